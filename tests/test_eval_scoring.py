from eval_support import probe_items

from bonsai.evaluate.results import Answer, ModelAnswers, build_results, verdict
from bonsai.evaluate.scoring import Item, compare, reasoning_within_limits, score_answer, summarise


def _item(category: str, reference: str = "Paris", language: str = "en", accept=()) -> Item:
    return Item("x", "val", category, language, "q", "", reference, list(accept))


def test_unique_categories_score_exact_and_contains_with_accepted_answers() -> None:
    scores = score_answer(_item("open_qa", "Mount Fuji", accept=["Fuji"]), "It is Fuji, of course.")
    assert scores["contains"] == 1.0 and scores["exact"] == 0.0
    assert score_answer(_item("classification", "Positive"), "positive.")["exact"] == 1.0
    assert score_answer(_item("closed_qa", "4.2 kg"), "３．６ kg")["contains"] == 0.0
    # Full-width digits and punctuation normalise to the reference.
    assert score_answer(_item("closed_qa", "4.2 kg"), "体重は４．２ kgです")["contains"] == 1.0
    assert score_answer(_item("open_qa", "東京", "ja"), "日本の首都は東京です。")["contains"] == 1.0


def test_translation_and_creative_scores() -> None:
    tr = score_answer(
        _item("translation", "The weather is nice today.", "ja-en"), "The weather is nice today."
    )
    assert tr["chrf"] > 99
    loop = score_answer(_item("creative"), "富士山は、日本で一番高い山です。" * 4)
    assert loop["loop"] == 1.0 and loop["loop_free"] == 0.0 and loop["repeated_lines"] > 0.5
    q2q = score_answer(_item("question_to_question"), "Is she eating less? Since when? I see.")
    assert abs(q2q["question_share"] - 2 / 3) < 1e-9
    assert "question_share" not in score_answer(_item("brainstorming"), "a\nb")


def test_reasoning_limits() -> None:
    assert reasoning_within_limits("You should read the note.\nYou should answer.")
    assert not reasoning_within_limits("")
    assert not reasoning_within_limits(None)
    assert not reasoning_within_limits("\n".join(["You should think."] * 6))
    assert not reasoning_within_limits(" ".join(["word"] * 121))
    scores = score_answer(_item("open_qa"), "Paris", reasoning="")
    assert scores["reasoning_ok"] == 0.0
    assert "reasoning_ok" not in score_answer(_item("open_qa"), "Paris")


def test_summary_and_paired_deltas_per_category() -> None:
    items = probe_items()
    good = [score_answer(i, i.reference) for i in items]
    bad = [score_answer(i, "no idea") for i in items]
    summary = summarise(items, good, [i.reference for i in items], samples=200)
    assert set(summary) == {"open_qa", "classification", "translation"}
    open_qa = summary["open_qa"]["metrics"]["contains"]
    assert open_qa["mean"] == 1.0 and open_qa["n"] == 20 and open_qa["low"] == 1.0
    assert set(summary["translation"]["metrics"]["chrf_by_direction"]) == {"en-ja", "ja-en"}
    assert summary["classification"]["metrics"]["exact"]["low"] is None  # 3 items: no interval
    deltas = compare(items, bad, good, samples=200)
    assert deltas["open_qa"]["contains"]["delta"] == 1.0
    assert deltas["open_qa"]["contains"]["significant"]
    assert not deltas["classification"]["exact"]["significant"]  # too few items to say


def test_build_results_and_promotion_verdict() -> None:
    items = probe_items()
    right = [Answer(i.reference) for i in items]
    wrong = [Answer("no idea") for i in items]
    results = build_results(
        items=items,
        models=[ModelAnswers("base", "b", right), ModelAnswers("tuned", "t", wrong)],
        primary="tuned",
        bootstrap_samples=200,
    )
    assert results["counts"] == {"val": 0, "probe": len(items)}
    assert results["items"][0]["answers"]["tuned"]["text"] == "no idea"
    decision = verdict(results, "base")
    assert "open_qa" in decision["worse"] and not decision["not_worse"]
    assert verdict(
        build_results(
            items=items,
            models=[ModelAnswers("base", "b", wrong), ModelAnswers("tuned", "t", right)],
            primary="tuned",
            bootstrap_samples=200,
        ),
        "base",
    )["not_worse"]
