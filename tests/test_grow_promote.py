"""The promotion rule on crafted before/after numbers, and read from a real evaluation dict."""

from __future__ import annotations

import pytest

from bonsai.errors import BonsaiError
from bonsai.evaluate.diagnostics import RecordLoss
from bonsai.evaluate.results import Answer, ModelAnswers, build_results
from bonsai.evaluate.scoring import Item
from bonsai.grow.args import GrowArgs, PromotionRule
from bonsai.grow.promote import CategoryScore, Comparison, comparison_from_results, decide


def _comparison(loss_before=2.0, loss_after=2.0, *scores: CategoryScore) -> Comparison:
    return Comparison("current", "new", loss_before, loss_after, list(scores))


def _score(category, delta, low, high, n=20, metric="contains") -> CategoryScore:
    return CategoryScore(category, metric, 0.5, 0.5 + delta, delta, low, high, n)


def test_not_worse_is_promoted():
    decision = decide(_comparison(2.0, 2.03, _score("open_qa", -0.05, -0.2, 0.1)), PromotionRule())
    assert decision.promote
    assert [c.passed for c in decision.checks] == [True, True]
    assert decision.reasons == []


def test_validation_loss_beyond_the_tolerance_blocks():
    rule = PromotionRule(max_val_loss_increase=0.02)
    assert decide(_comparison(2.0, 2.04), rule).promote  # exactly at the limit
    decision = decide(_comparison(2.0, 2.05), rule)
    assert not decision.promote
    assert decision.reasons[0].startswith("validation loss: 2.0000 → 2.0500 (limit 2.0400)")
    assert decide(_comparison(2.0, 2.05), PromotionRule(max_val_loss_increase=0.05)).promote
    # A negative tolerance asks for an improvement.
    demanding = PromotionRule(max_val_loss_increase=-0.1)
    assert not decide(_comparison(2.0, 1.85), demanding).promote
    assert decide(_comparison(2.0, 1.8), demanding).promote
    assert "at least 10% lower" in demanding.describe()


def test_a_significant_unique_category_drop_blocks_and_an_insignificant_one_does_not():
    significant = _score("classification", -0.3, -0.5, -0.1, metric="exact")
    decision = decide(_comparison(2.0, 1.9, significant), PromotionRule())
    assert not decision.promote
    assert "classification" in decision.reasons[0]
    assert "below" in decision.reasons[0] or "beyond" in decision.reasons[0]

    straddles = _score("classification", -0.3, -0.5, 0.02, metric="exact")
    assert decide(_comparison(2.0, 1.9, straddles), PromotionRule()).promote


def test_too_few_items_are_not_judged():
    tiny = CategoryScore("open_qa", "contains", 1.0, 0.0, -1.0, None, None, 3)
    decision = decide(_comparison(2.0, 2.0, tiny), PromotionRule())
    assert decision.promote
    assert decision.checks[1].passed is None and "too few" in decision.checks[1].detail


def test_creative_categories_are_shown_unless_judged():
    loops = _score("creative", -0.4, -0.6, -0.2, metric="loop_free")
    assert decide(_comparison(2.0, 2.0, loops), PromotionRule()).promote
    assert not decide(_comparison(2.0, 2.0, loops), PromotionRule(judge_creative=True)).promote


def test_min_unique_drop_is_a_share_of_the_metric_scale():
    # chrF runs from 0 to 100: a drop of 3 points is 0.03 of its scale.
    chrf = _score("translation", -3.0, -5.0, -1.0, metric="chrf")
    assert not decide(_comparison(2.0, 2.0, chrf), PromotionRule(min_unique_drop=0.02)).promote
    assert decide(_comparison(2.0, 2.0, chrf), PromotionRule(min_unique_drop=0.05)).promote


def test_unmeasured_loss_cannot_be_promoted():
    decision = decide(_comparison(None, 2.0), PromotionRule())
    assert not decision.promote and "not measured" in decision.reasons[0]


def test_rule_and_args_are_checked():
    with pytest.raises(BonsaiError, match="fraction"):
        PromotionRule(max_val_loss_increase=1.5)
    with pytest.raises(BonsaiError, match="not both"):
        GrowArgs(steps=2, epochs=1.0)
    with pytest.raises(BonsaiError, match="1 or more"):
        GrowArgs(steps=0)
    assert "2% higher" in PromotionRule().describe()


def test_comparison_is_read_from_an_evaluation_with_new_minus_current_deltas():
    items = [
        Item(f"q{i}", "val", "open_qa", "en", f"What is {i}?", "", f"answer {i}") for i in range(6)
    ]
    current = [Answer(f"answer {i}") for i in range(6)]  # all right
    new = [Answer(f"answer {i}" if i < 2 else "no idea") for i in range(6)]  # 4 of 6 wrong
    losses_current = [RecordLoss(f"q{i}", "open_qa", "en", "val", 1.0, 10) for i in range(6)]
    losses_new = [RecordLoss(f"q{i}", "open_qa", "en", "val", 1.5, 10) for i in range(6)]
    results = build_results(
        items=items,
        models=[
            ModelAnswers("new", "new run", new, record_losses=losses_new),
            ModelAnswers("current", "current run", current, record_losses=losses_current),
        ],
        primary="new",
        bootstrap_samples=200,
    )
    comparison = comparison_from_results(results, "new", "current")
    assert comparison.val_loss_before == pytest.approx(1.0)
    assert comparison.val_loss_after == pytest.approx(1.5)
    (score,) = comparison.categories
    assert (score.category, score.metric, score.n) == ("open_qa", "contains", 6)
    assert score.before == pytest.approx(1.0) and score.after == pytest.approx(2 / 6)
    assert score.delta == pytest.approx(-4 / 6)
    assert score.high is not None and score.high < 0
    decision = decide(comparison, PromotionRule(max_val_loss_increase=0.9))
    assert not decision.promote and decision.reasons[0].startswith("open_qa")
