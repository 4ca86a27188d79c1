"""The models an evaluation compares.

- **Answers** come from a chat session on the generation engine that chat uses (the run's
  adapter merged into a private copy of the base weights, the fast inference path), in its
  deterministic mode, one model at a time: :mod:`bonsai.evaluate.asking`.
- **Losses** need the exact training forward pass, so :class:`ModelSession` loads the base
  weights once, as training does, and attaches every run's adapter under its own name; the base
  model is the same weights with the adapters switched off.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bonsai.errors import BonsaiError

if TYPE_CHECKING:
    from bonsai.records import Record

Advance = Callable[[int], None]
"""Called with how many prompts or records were just finished, for a progress bar."""


@contextmanager
def quiet_deprecations() -> Iterator[None]:
    """transformers' and peft's deprecation notices are meant for library authors, not users."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


MAX_LOSS_TOKENS = 1024
"""Longest example measured for loss; the end of a longer target is cut, as training does."""
ROW_TOKENS = 2048
"""Tokens packed into one forward pass when measuring loss."""


class ModelSession:
    """One base model in memory and the adapters of the runs being compared."""

    def __init__(self, base_model: str, *, precision: str = "auto") -> None:
        import torch

        from bonsai.student import load_tokenizer
        from bonsai.train.model import choose_precision, load_base

        self.base_model = base_model
        # The same precision and attention as training, so that packed loss rows see the same
        # masks and the numbers match the run's own validation loss.
        self.precision, self.precision_why = choose_precision(precision, torch.device("cpu"))
        self.tokenizer = load_tokenizer(base_model)
        with quiet_deprecations():
            self.model: Any = load_base(base_model, self.precision)
        self.model.eval()
        self._adapters: dict[str, Path] = {}

    def add_adapter(self, key: str, adapter_dir: Path) -> None:
        """Attach a run's adapter under ``key``."""
        from peft import PeftModel

        if not (adapter_dir / "adapter_config.json").is_file():
            raise BonsaiError(
                "the run has no adapter (not finished, or made elsewhere)",
                file=adapter_dir,
                hint="`bonsai train --resume` finishes an interrupted run",
            )
        with quiet_deprecations():
            if not self._adapters:
                self.model = PeftModel.from_pretrained(
                    self.model, str(adapter_dir), adapter_name=key
                )
            else:
                self.model.load_adapter(str(adapter_dir), adapter_name=key)
        self.model.eval()
        self._adapters[key] = adapter_dir

    @contextmanager
    def use(self, key: str) -> Iterator[None]:
        """Run as ``key``: a run's adapter, or the bare base model for a key without one."""
        if key in self._adapters:
            self.model.set_adapter(key)
            yield
        elif self._adapters:
            with self.model.disable_adapter():
                yield
        else:
            yield

    # -- loss ---------------------------------------------------------------------------------

    def losses(
        self,
        layout: str,
        records: Sequence[Record],
        *,
        row_tokens: int = ROW_TOKENS,
        advance: Advance | None = None,
    ) -> dict[str, tuple[float, int]]:
        """Record id → (mean loss per target token, target tokens), teacher-forced in
        ``layout``, tokenised and packed exactly as training does (so the numbers match the
        run's validation loss). Records the layout cannot render are left out."""
        import torch

        from bonsai.train.data import DataReport, collate, fit_length, tokenise
        from bonsai.train.loss import token_losses

        report = DataReport()
        examples = tokenise(records, self.tokenizer, layout, report=report)
        examples = fit_length(examples, MAX_LOSS_TOKENS, "truncate", report)
        out: dict[str, tuple[float, int]] = {}
        row: list[Any] = []
        pending = 0

        def flush() -> None:
            if not row:
                return
            with torch.inference_mode():
                losses = token_losses(self.model, collate(row)).float()
            offset = 0
            for example in row:
                n = len(example.input_ids) - max(example.n_prompt, 1)
                part = losses[offset : offset + n]
                offset += n
                if n:
                    out[example.record_id] = (float(part.mean()), n)
            if advance:
                advance(len(row))
            row.clear()

        for example in sorted(examples, key=lambda e: len(e.input_ids)):
            if row and pending + len(example.input_ids) > row_tokens:
                flush()
                pending = 0
            row.append(example)
            pending += len(example.input_ids)
        flush()
        skipped = len(records) - len(examples)
        if skipped and advance:
            advance(skipped)
        return out
