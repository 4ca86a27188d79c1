"""The evaluate stage's settings: one dataclass, checked on creation; flags fill it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bonsai.errors import BonsaiError
from bonsai.layouts import BASE  # noqa: F401  (re-exported: `--against base`)

PARENT = "parent"
"""The name that stands for the run's parent run in ``--against``."""
REASONING_TOKENS = 64
"""Added to the answer budget for the `bonsai` layout, whose model writes its reasoning first
(at most 5 lines; about 30-50 tokens in the sample garden)."""


@dataclass
class EvalArgs:
    """What one ``bonsai eval`` does."""

    run: str
    """Run id to evaluate (a folder in the garden's runs/), or 'latest'."""
    against: list[str] = field(default_factory=list)
    """Models to compare with: run ids, 'base' or 'parent'. Empty: the run's parent (if it has
    one) and the base model."""
    probes: Path | None = None
    """A user's probe file (JSONL or a JSON array; see :mod:`bonsai.evaluate.probes`)."""
    builtin_probes: bool = True
    """Ask the built-in probes too (facts, capitals, J→E/E→J sentences)."""
    seed_probes: int = 5
    """Sentence pairs from the shared Alpaca seed tasks (``../shared/data``), when present, asked
    in both directions (J→E and E→J); 0: none."""
    max_items: int | None = None
    """Validation records asked at most, spread evenly over categories (None: all)."""
    max_probes: int | None = None
    """Probes asked at most, spread evenly over categories (None: all)."""
    rag: bool = True
    """Retrieve from the garden's notes and records and put them in the prompt, as chat and
    serve do (with their settings); False asks without notes, like ``bonsai chat --no-rag``."""
    max_new_tokens: int = 96
    """Longest answer, in tokens; a layout whose model writes its reasoning first (`bonsai`)
    gets ``REASONING_TOKENS`` (64) more for it."""
    losses: bool = True
    """Measure teacher-forced loss per validation record for every model."""
    outliers: bool = True
    """Also measure the tuned model's loss on every training record of a unique category: the
    records it still cannot fit are suspected contradictions (needs ``losses``)."""
    bootstrap_samples: int = 1000
    """Resamples for the bootstrap intervals."""
    seed: int = 0
    """Seed of everything random here (bootstrap, sampling of items)."""
    out: Path | None = None
    """Folder for the report (default: the run's folder)."""

    def __post_init__(self) -> None:
        if not self.run or not self.run.strip():
            raise BonsaiError("which run? pass a run id (see `bonsai runs`)", field="run")
        positive = {
            "max_new_tokens": self.max_new_tokens,
            "bootstrap_samples": self.bootstrap_samples,
        }
        for name, value in positive.items():
            if not isinstance(value, int) or value < 1:
                raise BonsaiError(f"must be a whole number of 1 or more, not {value!r}", field=name)
        for name in ("max_items", "max_probes"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise BonsaiError(f"must be 0 or more, not {value!r}", field=name)
        if self.seed_probes < 0:
            raise BonsaiError("must be 0 or more", field="seed_probes")
        if self.probes is not None:
            self.probes = Path(self.probes)
        if self.out is not None:
            self.out = Path(self.out)
        seen: list[str] = []
        for name in self.against:
            if name == self.run:
                raise BonsaiError(f"cannot compare run '{name}' with itself", field="against")
            if name not in seen:
                seen.append(name)
        self.against = seen


@dataclass
class AblationArgs:
    """What ``bonsai eval --ablation`` does: the same data, two layouts, equal budgets."""

    dataset: str
    """Dataset to train on (its validation split is what both models are evaluated on)."""
    layouts: tuple[str, ...] = ("alpaca", "bonsai")
    """Layouts compared; the last one is the primary (deltas read last − first)."""
    max_steps: int | None = None
    """Optimiser steps for each run (None: the train stage's default for the data)."""
    epochs: float | None = None
    """Epochs for each run, when ``max_steps`` is not given."""
    max_length: int | None = None
    """Longest training sequence in tokens (the same for both)."""
    seed: int = 0
    """The same seed for both runs: same initial adapter, same data order."""
    base_model: str | None = None
    """Base model for both (default: the garden's student)."""
    threads: int | None = None
    """CPU threads for torch (None: as training derives it)."""
    eval: EvalArgs | None = None
    """Evaluation settings shared by both runs (its ``run`` is filled in per run)."""

    def __post_init__(self) -> None:
        if not self.dataset or not self.dataset.strip():
            raise BonsaiError("an ablation needs --dataset NAME", field="dataset")
        if len(self.layouts) < 2 or len(set(self.layouts)) != len(self.layouts):
            raise BonsaiError("an ablation compares two or more different layouts", field="layouts")
        if self.max_steps is not None and self.max_steps < 1:
            raise BonsaiError("must be 1 or more", field="max_steps")
        if self.epochs is not None and self.epochs <= 0:
            raise BonsaiError("must be more than 0", field="epochs")
