"""Scoring replies to held-out questions (bench/quality_scoring.py): no model needed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from quality_scoring import (
    Question,
    QuestionError,
    has_accepted,
    load_questions,
    normalise,
    question_count,
    reads_back,
    reply_label,
    result_line,
    score_reply,
    summarise,
)


def english(text: str) -> str | None:
    """A stand-in language detector: Japanese when there is kana, else English."""
    return "ja" if any("\u3040" <= ch <= "\u30ff" for ch in text) else "en"


def q(category: str, **fields) -> Question:
    return Question(id=fields.pop("id", "q1"), category=category, question="?", **fields)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("４．２ｋｇ です", "4.2kgです"),
        ("8,800円", "8800円"),
        ("It is 97 °C.", "itis97c"),
        ("10 20", "10 20"),
        ("Grooming!", "grooming"),
    ],
)
def test_normalise(text: str, expected: str) -> None:
    assert normalise(text) == expected


def test_accepted_answers_match_by_any_form_and_keep_numbers_whole() -> None:
    assert has_accepted("She weighs 4.2kg now.", ["4.2 kg"])
    assert has_accepted("８時間です", ["8 hours", "8時間"])
    assert has_accepted("It cost ¥8,800.", ["8800"])
    assert not has_accepted("42 kg", ["4.2 kg"])
    assert not has_accepted("in 2013", ["13"])
    assert not has_accepted("2.5kgを2袋", ["5kg"])
    assert has_accepted("13 µg/dL, then 15", ["13"])
    assert not has_accepted("", ["x"])
    assert not has_accepted("anything", [])


@pytest.mark.parametrize(
    ("reply", "label"),
    [
        ("Toxic", "Toxic"),
        ("toxic.", "Toxic"),
        ("Toxic. Lilies harm the kidneys.", "Toxic"),
        ("  ＴＯＸＩＣ！", "Toxic"),
        ("危险。洋葱会破坏红细胞。", "危险"),
        ("I think it is toxic.", None),
        ("Safe or toxic", None),
    ],
)
def test_reply_label(reply: str, label: str | None) -> None:
    assert reply_label(reply, ["Safe", "Toxic", "危险", "安全"]) == label


def test_question_count_counts_both_widths() -> None:
    assert question_count("Why?\n何時ですか？\nOK.") == 2
    assert question_count("No questions here.") == 0


def test_score_facts_and_closed() -> None:
    fact = q("open_qa", accepted=["Hidamari", "ひだまり"])
    assert score_reply(fact, "From Hidamari Cat Shelter.", detect=english).correct
    assert not score_reply(fact, "From a pet shop.", detect=english).correct
    closed = q("closed_qa", input="text", accepted=["under the bed"])
    score = score_reply(closed, "Under the bed, the whole time.", detect=english)
    assert (score.kind, score.correct, score.loop) == ("closed", True, False)


RECEIPT = (
    "Receipt, Sakura Animal Clinic, 12 April 2025. Yearly check-up ¥5,500. "
    "Blood test ¥8,800. Urine test ¥3,300. Total ¥17,600."
)


def test_a_reply_that_reads_the_given_text_back_is_told_from_an_answer() -> None:
    assert reads_back(RECEIPT, RECEIPT)
    assert reads_back("Blood test ¥8,800. " + RECEIPT[:60], RECEIPT)
    assert not reads_back("¥8,800.", RECEIPT)
    assert not reads_back("The blood test cost ¥8,800 on 12 April.", RECEIPT)
    assert not reads_back("4.2kg", "4.2kgです")  # too short a text to read back


def test_right_replies_that_copy_are_counted_apart() -> None:
    closed = q("closed_qa", id="c", input=RECEIPT, accepted=["8,800"])
    fact = q("open_qa", id="f", accepted=["52"])
    scores = [
        score_reply(closed, "¥8,800.", detect=english),
        score_reply(closed, RECEIPT, detect=english),
        score_reply(fact, "52 loaves.", detect=english),
        score_reply(fact, "[1] Bake log > 2024\n52 loaves in all.", detect=english),
    ]
    assert [(s.correct, s.read_back, s.echo) for s in scores] == [
        (True, False, False),
        (True, True, False),
        (True, False, False),
        (True, False, True),
    ]
    summary = summarise(scores)
    assert (summary["closed"], summary["closed_not_copied"]) == ([2, 2], [1, 2])
    assert (summary["facts"], summary["facts_not_copied"]) == ([2, 2], [1, 2])


def test_score_labels() -> None:
    label = q("classification", labels=["safe", "toxic"], accepted=["toxic"])
    assert score_reply(label, "Toxic.", detect=english).correct
    wrong = score_reply(label, "Safe. It is fine.", detect=english)
    assert (wrong.correct, wrong.label) == (False, "safe")


def test_score_translation_language_and_chrf() -> None:
    t = q("translation", target_language="en", accepted=["When a stranger comes, Mochi hides."])
    good = score_reply(t, "When a stranger comes, Mochi hides.", detect=english)
    assert good.correct and good.chrf == pytest.approx(100.0)
    echoed = score_reply(t, "知らない人が来ると、もちは隠れます。", detect=english)
    assert not echoed.correct and echoed.chrf < 10


def test_score_q2q_and_loops() -> None:
    two = score_reply(q("question_to_question"), "When?\nHow much？", detect=english)
    assert (two.correct, two.questions) == (True, 2)
    assert not score_reply(q("question_to_question"), "Feed her.", detect=english).correct
    loop = score_reply(q("open_qa", accepted=["x"]), "富士山は高い山です。" * 5, detect=english)
    assert loop.loop


def test_summarise_and_result_line() -> None:
    questions = [
        q("open_qa", id="a", accepted=["52"]),
        q("open_qa", id="b", accepted=["22 cm"]),
        q("classification", id="c", labels=["safe", "toxic"], accepted=["safe"]),
        q("translation", id="d", target_language="en", accepted=["I bake on Sunday."]),
        q("question_to_question", id="e"),
    ]
    replies = ["52 loaves.", "25 cm.", "safe", "I bake on Sunday.", "Which day? Which loaf?"]
    scores = [score_reply(x, r, detect=english) for x, r in zip(questions, replies, strict=True)]
    summary = summarise(scores)
    assert summary["facts"] == [1, 2]
    assert summary["closed"] == [0, 0]
    assert summary["labels"] == [1, 1]
    assert summary["translation_lang"] == [1, 1]
    assert summary["chrf"] == pytest.approx(100.0)
    assert summary["q2q"] == [1, 1]
    assert summary["loops"] == [0, 5]
    line = result_line(summary, "tuned")
    assert line == (
        "RESULT facts=1/2 closed=0/0 labels=1/1 translation_lang=1/1 chrf=100.0 q2q=1/1 "
        "loops=0/5 model=tuned"
    )
    assert "chrf=-" in result_line(summarise(scores[:2]), "base")


def test_the_project_language_detector_is_the_default() -> None:
    t = q("translation", target_language="ja", accepted=["毎週日曜の朝に焼きます。"])
    assert score_reply(t, "毎週日曜日の朝にパンを焼きます。").correct
    assert not score_reply(t, "I bake every Sunday morning.").correct


def _write(tmp_path: Path, *objects: dict) -> Path:
    path = tmp_path / "q.jsonl"
    path.write_text("".join(json.dumps(o) + "\n" for o in objects), encoding="utf-8")
    return path


GOOD = {"id": "a", "category": "open_qa", "question": "Who?", "accepted": ["Sato"]}


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"category": "creative"}, "category 'creative'"),
        ({"accepted": []}, "needs at least one 'accepted'"),
        ({"accepted": "Sato"}, "'accepted' must be a list"),
        ({"question": " "}, "'question' must be a non-empty string"),
        ({"colour": "red"}, "unknown field(s) colour"),
        ({"category": "closed_qa"}, "closed_qa needs the text"),
        ({"category": "classification", "labels": ["a", "b"]}, "exactly one of the 'labels'"),
        ({"category": "classification"}, "needs 'labels'"),
        ({"category": "translation"}, "needs 'target_language'"),
    ],
)
def test_load_questions_names_the_line_of_a_bad_question(
    tmp_path: Path, bad: dict, message: str
) -> None:
    path = _write(tmp_path, GOOD, {**GOOD, "id": "b", **bad})
    with pytest.raises(QuestionError, match=r"q\.jsonl:2: ") as caught:
        load_questions(path)
    assert message in str(caught.value)


def test_load_questions_refuses_duplicates_and_bad_json(tmp_path: Path) -> None:
    with pytest.raises(QuestionError, match="appears twice"):
        load_questions(_write(tmp_path, GOOD, GOOD))
    path = tmp_path / "broken.jsonl"
    path.write_text('{"id": \n', encoding="utf-8")
    with pytest.raises(QuestionError, match=r"broken\.jsonl:1: not JSON"):
        load_questions(path)


def test_load_questions_reads_a_good_file(tmp_path: Path) -> None:
    q2q = {"id": "b", "category": "question_to_question", "question": "Why?"}
    loaded = load_questions(_write(tmp_path, GOOD, q2q))
    assert [x.kind for x in loaded] == ["facts", "q2q"]


def test_source_found_tells_retrieval_misses_apart() -> None:
    fact = q("open_qa", accepted=["52"], source="notes/bake-log.md")
    hit = score_reply(fact, "52", detect=english, sources=["/g/notes/bake-log.md", "dataset:x"])
    miss = score_reply(fact, "52", detect=english, sources=["/g/notes/country-loaf.md"])
    assert (hit.note_retrieved, miss.note_retrieved) == (True, False)
    assert score_reply(fact, "52", detect=english).note_retrieved is None
    given = q("closed_qa", input="t", accepted=["x"], source="given text")
    assert score_reply(given, "x", detect=english, sources=[]).note_retrieved is None
    assert summarise([hit, miss])["note_retrieved"] == [1, 2]


def test_prompt_and_category_diagnostics() -> None:
    fact = q("open_qa", accepted=["52"])
    fact.question = "How many loaves?"
    prompt = "### Instruction:\nHow many loaves?\n### Input:\nNotes: 52 loaves in 2024."
    score = score_reply(fact, "I do not know.", detect=english, prompt=prompt, category="closed_qa")
    assert (score.correct, score.answer_in_prompt, score.category_guessed) == (False, True, False)
    missing = score_reply(fact, "?", detect=english, prompt="How many loaves?", category="open_qa")
    assert (missing.answer_in_prompt, missing.category_guessed) == (False, True)
    label = q("classification", labels=["a", "b"], accepted=["a"])
    assert score_reply(label, "a", detect=english, prompt="a").answer_in_prompt is None
    summary = summarise([score, missing])
    assert summary["answer_in_prompt"] == [1, 2]
    assert summary["category_guessed"] == [1, 2]
