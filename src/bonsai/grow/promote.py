"""The promotion rule: is the newly grown run not worse than the current one?

:func:`comparison_from_results` reads the numbers out of an evaluation (``bonsai.evaluate``'s
results dict: the new run as primary model, the current one compared against it);
:func:`decide` applies the :class:`~bonsai.grow.args.PromotionRule` to them. Both are pure, so
the rule is tested on crafted numbers as well as end to end.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from bonsai.evaluate.results import Delta, deltas_against, metric_cell
from bonsai.grow.args import PromotionRule
from bonsai.records import CATEGORIES, UNIQUE_CATEGORIES

HEADLINE: dict[str, tuple[str, str, float]] = {
    "open_qa": ("contains", "contains the reference", 1.0),
    "closed_qa": ("contains", "contains the reference", 1.0),
    "classification": ("exact", "exact label", 1.0),
    "translation": ("chrf", "chrF", 100.0),
    "brainstorming": ("loop_free", "not looping", 1.0),
    "creative": ("loop_free", "not looping", 1.0),
    "question_to_question": ("question_share", "questions", 1.0),
}
"""Category → (headline metric, label, full scale). Higher is better for all of them; the scale
turns ``min_unique_drop`` (a fraction) into the metric's units (chrF runs from 0 to 100)."""


@dataclass
class CategoryScore:
    """One category, before (current run) and after (new run)."""

    category: str
    metric: str
    before: float | None = None
    after: float | None = None
    delta: float | None = None
    """after − before, paired over the same items."""
    low: float | None = None
    """Lower end of the 95% paired bootstrap interval of ``delta`` (None below 5 items)."""
    high: float | None = None
    n: int = 0
    val_loss_before: float | None = None
    val_loss_after: float | None = None


@dataclass
class Comparison:
    """The numbers the rule looks at."""

    before: str
    """The current run ('base' for the base model)."""
    after: str
    """The new run."""
    val_loss_before: float | None
    val_loss_after: float | None
    categories: list[CategoryScore] = field(default_factory=list)
    val_records: int = 0


@dataclass
class Check:
    """One part of the verdict."""

    name: str
    """'validation loss' or a category."""
    passed: bool | None
    """True: fine; False: worse (blocks promotion); None: shown but not judged."""
    detail: str


@dataclass
class Decision:
    promote: bool
    checks: list[Check]
    rule: str
    """The rule in words."""

    @property
    def reasons(self) -> list[str]:
        """Why the new run is worse (empty when it is promoted)."""
        return [f"{c.name}: {c.detail}" for c in self.checks if c.passed is False]

    def to_dict(self) -> dict[str, Any]:
        return {
            "promote": self.promote,
            "rule": self.rule,
            "checks": [asdict(c) for c in self.checks],
        }


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def comparison_from_results(results: dict[str, Any], after: str, before: str) -> Comparison:
    """The rule's numbers from an evaluation whose primary model is ``after``."""
    losses = results.get("val_loss") or {}
    loss_after = losses.get(after) or {}
    loss_before = losses.get(before) or {}
    summary = results.get("summary") or {}
    deltas = deltas_against(results, before)
    categories: list[CategoryScore] = []
    present = set(summary.get(after) or {}) | set(loss_after.get("by_category") or {})
    for category in [c for c in CATEGORIES if c in present]:
        metric = HEADLINE[category][0]

        def mean(key: str, category: str = category, metric: str = metric) -> float | None:
            cell = metric_cell(results, key, category, metric)
            return cell.mean if cell else None

        delta = deltas.get(category, {}).get(metric) or Delta(None)
        categories.append(
            CategoryScore(
                category=category,
                metric=metric,
                before=mean(before),
                after=mean(after),
                delta=delta.delta,
                low=delta.low,
                high=delta.high,
                n=delta.n,
                val_loss_before=_num((loss_before.get("by_category") or {}).get(category)),
                val_loss_after=_num((loss_after.get("by_category") or {}).get(category)),
            )
        )
    return Comparison(
        before=before,
        after=after,
        val_loss_before=_num(loss_before.get("overall")),
        val_loss_after=_num(loss_after.get("overall")),
        categories=categories,
        val_records=int(loss_after.get("records") or 0),
    )


def _loss_check(comparison: Comparison, rule: PromotionRule) -> Check:
    before, after = comparison.val_loss_before, comparison.val_loss_after
    if before is None or after is None:
        return Check("validation loss", False, "not measured for both runs: cannot tell")
    limit = before * (1 + rule.max_val_loss_increase)
    detail = f"{before:.4f} → {after:.4f} (limit {limit:.4f})"
    return Check("validation loss", after <= limit, detail)


def _category_check(score: CategoryScore, rule: PromotionRule) -> Check:
    _, label, scale = HEADLINE[score.category]
    judged = score.category in UNIQUE_CATEGORIES or rule.judge_creative
    if score.delta is None:
        return Check(score.category, None, "no comparable answers")
    shown = f"{label} {score.delta:+.3f}"
    if score.low is None or score.high is None:
        return Check(score.category, None, f"{shown}; {score.n} items: too few to judge")
    shown += f" [{score.low:+.3f}, {score.high:+.3f}]"
    if not judged:
        return Check(score.category, None, f"{shown}; creative: shown, not judged")
    worse = score.high < 0 and -score.delta > rule.min_unique_drop * scale
    if worse:
        return Check(score.category, False, f"{shown}: dropped beyond its bootstrap interval")
    return Check(score.category, True, shown)


def decide(comparison: Comparison, rule: PromotionRule) -> Decision:
    """Apply ``rule``: promoted when no check fails (see :class:`PromotionRule`)."""
    checks = [_loss_check(comparison, rule)]
    checks += [_category_check(score, rule) for score in comparison.categories]
    return Decision(
        promote=all(check.passed is not False for check in checks),
        checks=checks,
        rule=rule.describe(),
    )
