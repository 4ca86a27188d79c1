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


def _probe(category: str, reference: str, language: str = "en", accept=()) -> Item:
    return Item("p", "probe", category, language, "q", "", reference, list(accept))


def test_facts_recall_only_where_answers_are_accepted() -> None:
    fact = _probe("open_qa", "Hidamari", accept=["ひだまり"])
    assert score_answer(fact, "Mochi came from the Hidamari shelter.")["facts"] == 1.0
    assert score_answer(fact, "ひだまりです。")["facts"] == 1.0
    assert score_answer(fact, "From a pet shop.")["facts"] == 0.0
    # A validation record's output is one way to answer, not a fact to find in the reply.
    record = _item("closed_qa", "4.2kgです。昨年の4.1kgから少し増えました。", "ja")
    assert "facts" not in score_answer(record, "4.2kgです。")


def test_qa_replies_that_copy_the_prompt_are_marked() -> None:
    report = (
        "Visit report: she spent the whole visit under the bed and came out after the vet left."
    )
    item = Item(
        "c",
        "val",
        "closed_qa",
        "en",
        "Where did Mochi spend the visit?",
        report,
        "under the bed",
        [],
    )
    assert score_answer(item, report)["copied"] == 1.0
    assert score_answer(item, "Under the bed.")["copied"] == 0.0
    assert score_answer(_item("open_qa"), "[1] Travel notes\nParis")["copied"] == 1.0
    translation = _item("translation", "The weather is nice today.", "ja-en")
    assert "copied" not in score_answer(translation, "The weather is nice today.")


def test_classification_scores_the_label() -> None:
    item = _probe("classification", "Positive")
    assert score_answer(item, "Positive. She loves it.")["label"] == 1.0
    assert score_answer(item, "Negative.")["label"] == 0.0
    assert "label" not in score_answer(_probe("open_qa", "Paris"), "Paris")


def test_translation_scores_the_reply_language() -> None:
    to_english = _probe("translation", "My cat is six years old.", "ja-en")
    scores = score_answer(to_english, "My cat is six years old.", detect=lambda text: "en")
    assert scores["target_language"] == 1.0 and scores["chrf"] > 99
    # Repeating the Japanese is the typical failure; the rules alone tell it apart.
    assert score_answer(to_english, "私の猫は六歳です。")["target_language"] == 0.0
    to_japanese = _probe("translation", "私の猫は六歳です。", "en-ja")
    assert score_answer(to_japanese, "うちの猫は六歳です。")["target_language"] == 1.0
    # The target is read from the item: a field, the direction, the instruction, the reference.
    named = Item("t", "val", "translation", "ja", "Translate into English:", "猫", "Cat")
    assert named.target(lambda text: None) == "en"
    given = Item("t", "probe", "translation", None, "q", "", "x", target_language="zh")
    assert given.target(lambda text: "en") == "zh"
    by_reference = Item("t", "val", "translation", None, "訳して", "", "The cat sleeps.")
    assert by_reference.target(lambda text: "en") == "en"


def test_q2q_scores_replies_with_two_questions_and_loops_everywhere() -> None:
    q2q = _item("question_to_question")
    assert score_answer(q2q, "Since when? Is she drinking more?")["two_questions"] == 1.0
    assert score_answer(q2q, "Since when is she eating less?")["two_questions"] == 0.0
    for category in ("open_qa", "classification", "translation", "creative"):
        looping = score_answer(_item(category, language="ja-en"), "水をあげる。" * 5)
        assert looping["loop"] == 1.0, category


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


def test_open_ended_replies_are_scored_against_the_keepers_answer_and_language() -> None:
    item = Item("b", "val", "brainstorming", "ja", "q", "", "毎月体重を量る。食欲と水の量を見る。")
    close = score_answer(item, "毎月体重を量ります。食欲も見ます。")
    far = score_answer(item, "I would go for a walk in the park.")
    assert close["ref_chrf"] > far["ref_chrf"] + 20
    assert close["in_language"] == 1.0 and far["in_language"] == 0.0
    # Unique questions get the language check too; translations keep their target language.
    assert score_answer(_item("open_qa", "東京", "ja"), "東京です。")["in_language"] == 1.0
    translation = score_answer(_item("translation", "Hi.", "ja-en"), "Hi.")
    assert "in_language" not in translation and "ref_chrf" not in translation
    assert "ref_chrf" not in score_answer(_item("question_to_question"), "Why? When?")
    assert "in_language" not in score_answer(_item("creative"), "   ")
