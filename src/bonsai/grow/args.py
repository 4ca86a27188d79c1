"""The grow stage's settings: what one ``bonsai grow`` does, and the rule that promotes a run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from bonsai.errors import BonsaiError


@dataclass
class PromotionRule:
    """When the newly grown adapter replaces the current one.

    The new run is *not worse* than the current one, and is promoted, when both hold:

    1. **Validation loss**: ``new ≤ current × (1 + max_val_loss_increase)``, both measured on the
       same validation records (token-weighted mean loss of the target).
    2. **Unique categories** (open_qa, closed_qa, classification, translation): no category's
       headline score (contains match for QA, exact label for classification, chrF for
       translation) dropped *significantly*, i.e. with the 95% paired bootstrap interval of
       ``new − current`` lying entirely below zero and the drop larger than
       ``min_unique_drop``. A category with fewer than 5 items has no interval and is reported
       as too small to judge: it neither blocks nor supports promotion.

    Creative categories (brainstorming, creative, question_to_question) have no single right
    answer; their scores are shown but do not decide, unless ``judge_creative`` is set.
    """

    max_val_loss_increase: float = 0.02
    """Largest relative rise of validation loss still accepted (0.02: at most 2% higher). New
    records pull the adapter towards themselves, so a small rise on the old records is normal.
    A negative value asks for an improvement (-0.01: at least 1% lower)."""
    min_unique_drop: float = 0.0
    """A significant drop of a unique category's score only blocks promotion when it is larger
    than this (0: every significant drop blocks)."""
    judge_creative: bool = False
    """Also block on a significant drop of a creative category's headline score (answers not
    caught in a loop; for question_to_question the share of sentences that are questions)."""

    def __post_init__(self) -> None:
        if not -1 < self.max_val_loss_increase < 1:
            raise BonsaiError(
                f"must be a fraction between -1 and 1, not {self.max_val_loss_increase}",
                field="max_val_loss_increase",
            )
        if not 0 <= self.min_unique_drop < 1:
            raise BonsaiError(
                f"must be from 0 to below 1, not {self.min_unique_drop}", field="min_unique_drop"
            )

    def describe(self) -> str:
        """The rule in one paragraph, as ``bonsai grow`` prints it."""
        scope = "any category" if self.judge_creative else "any unique category"
        larger = (
            f" by more than {self.min_unique_drop:g} of its scale" if self.min_unique_drop else ""
        )
        tolerance = self.max_val_loss_increase
        loss = (
            f"at most {tolerance:.0%} higher than now"
            if tolerance >= 0
            else f"at least {-tolerance:.0%} lower than now"
        )
        return (
            f"Promoted only if not worse: validation loss {loss}, and in {scope} no drop of the "
            f"headline score{larger} whose 95% bootstrap interval lies entirely below zero "
            "(categories with fewer than 5 items are too small to judge)."
        )


@dataclass
class GrowArgs:
    """What one ``bonsai grow`` does."""

    dataset: str | None = None
    """Dataset the new records join (None: the dataset of the current run; in a garden without
    runs, its only dataset)."""
    dry_run: bool = False
    """Show what would happen (records, notes, review list, training plan); write nothing."""
    train: bool = True
    """Train, evaluate and maybe promote after the records are made (False: stop after the new
    records have their reasoning)."""
    steps: int | None = None
    """Optimizer steps of the new training run (None: derived by the train stage)."""
    epochs: float | None = None
    """Epochs of the new training run over the whole dataset (instead of ``steps``)."""
    experiences_as_records: bool = False
    """Also make a record of each remembered experience (it always becomes a note)."""
    dismiss_reviews: bool = False
    """Mark the answers on the review list (rated bad, no better answer) as dismissed once they
    are exported, so they stop being listed. By default they stay pending until a correction of
    their turn arrives."""
    teach: bool = True
    """Have the teacher write the new records' reasoning (the garden's ``[teacher]`` settings;
    the offline template backend unless one is configured)."""
    eval_max_items: int | None = 64
    """Validation records the before/after comparison asks at most, spread over categories
    (None: all of them). Losses are always measured on all of them."""
    eval_max_probes: int | None = 24
    """Built-in probes asked at most in the comparison (0: none)."""
    eval_max_new_tokens: int = 64
    """Longest answer in the comparison, in tokens."""
    seed: int = 0
    """Seed of training and of the bootstrap intervals."""
    promotion: PromotionRule = field(default_factory=PromotionRule)
    """The rule that decides whether the new run replaces the current one."""

    def __post_init__(self) -> None:
        if self.dataset is not None and not self.dataset.strip():
            raise BonsaiError("the dataset name is empty", field="dataset")
        if self.steps is not None and self.epochs is not None:
            raise BonsaiError(
                "give --steps or --epochs, not both", field="steps", hint="one sets the other"
            )
        if self.steps is not None and (not isinstance(self.steps, int) or self.steps < 1):
            raise BonsaiError(
                f"must be a whole number of 1 or more, not {self.steps}", field="steps"
            )
        if self.epochs is not None and not self.epochs > 0:
            raise BonsaiError(f"must be more than 0, not {self.epochs}", field="epochs")
        for name in ("eval_max_items", "eval_max_probes"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise BonsaiError(f"must be 0 or more, not {value!r}", field=name)
        if not isinstance(self.eval_max_new_tokens, int) or self.eval_max_new_tokens < 1:
            raise BonsaiError("must be 1 or more", field="eval_max_new_tokens")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
