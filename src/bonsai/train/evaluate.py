"""Validation loss, overall and per category: the mean cross-entropy of the target tokens.

The same function scores BONSAI's loop and, in ``bench/train_throughput.py``, a model trained by
another trainer, so their figures compare like for like.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bonsai.train.args import MICRO_TOKENS
from bonsai.train.data import CATEGORY_NAMES, Example, collate, pack

if TYPE_CHECKING:
    import torch


@dataclass
class LossSums:
    """Summed token losses and token counts, overall and per category (addable across rows)."""

    loss: float = 0.0
    tokens: int = 0
    by_category: dict[str, list[float]] = field(default_factory=dict)
    """Category → [summed loss, tokens]."""

    def add(self, losses: torch.Tensor, categories: torch.Tensor) -> None:
        import torch

        losses = losses.detach().float()
        categories = categories.to(losses.device)
        self.loss += float(losses.sum())
        self.tokens += int(losses.numel())
        sums = torch.zeros(len(CATEGORY_NAMES), dtype=torch.float64, device=losses.device)
        counts = torch.zeros(len(CATEGORY_NAMES), dtype=torch.float64, device=losses.device)
        sums.index_add_(0, categories, losses.double())
        counts.index_add_(0, categories, torch.ones_like(losses, dtype=torch.float64))
        for index in torch.nonzero(counts).flatten().tolist():
            entry = self.by_category.setdefault(CATEGORY_NAMES[index], [0.0, 0])
            entry[0] += float(sums[index])
            entry[1] += int(counts[index])

    @property
    def mean(self) -> float:
        return self.loss / self.tokens if self.tokens else float("nan")

    def means(self) -> dict[str, float]:
        return {name: s / n for name, (s, n) in sorted(self.by_category.items()) if n}

    def to_dict(self) -> dict[str, Any]:
        return {"loss": self.loss, "tokens": self.tokens, "by_category": self.by_category}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LossSums:
        by_category = {k: [float(v[0]), int(v[1])] for k, v in data.get("by_category", {}).items()}
        return cls(float(data.get("loss", 0.0)), int(data.get("tokens", 0)), by_category)

    def to_tensor(self, device: Any) -> torch.Tensor:
        """Flat sums for an all-reduce across processes: [loss, tokens, (sum, n) per category]."""
        import torch

        values = [self.loss, float(self.tokens)]
        for name in CATEGORY_NAMES:
            s, n = self.by_category.get(name, [0.0, 0])
            values += [s, float(n)]
        return torch.tensor(values, dtype=torch.float64, device=device)

    @classmethod
    def from_tensor(cls, values: torch.Tensor) -> LossSums:
        flat = values.tolist()
        sums = cls(flat[0], int(flat[1]))
        for i, name in enumerate(CATEGORY_NAMES):
            s, n = flat[2 + 2 * i], int(flat[3 + 2 * i])
            if n:
                sums.by_category[name] = [s, n]
        return sums


def validation_rows(examples: Sequence[Example], micro_tokens: int) -> list[list[int]]:
    """Validation examples packed in their given order (the same rows at every evaluation)."""
    return pack(range(len(examples)), examples, micro_tokens)


def validation_loss(
    model: Any,
    examples: Sequence[Example],
    *,
    micro_tokens: int = MICRO_TOKENS,
    device: Any = None,
    rank: int = 0,
    world: int = 1,
) -> LossSums:
    """Summed target-token losses of ``examples`` under ``model`` (this process's share of rows).

    ``model`` is a transformers causal LM or a PEFT model. It is put in eval mode for the pass
    and back in the mode it was in afterwards.
    """
    import torch

    from bonsai.train.loss import token_losses

    sums = LossSums()
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            rows = validation_rows(examples, micro_tokens)
            for row in rows[rank::world]:
                batch = collate([examples[i] for i in row])
                if device is not None:
                    batch = batch.to(device)
                sums.add(token_losses(model, batch), batch.categories)
    finally:
        model.train(was_training)
    return sums
