"""The records BONSAI writes itself for the nursery stock: shape, languages and no duplicates.

Read with `json` only, so these checks do not depend on the importer.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from bonsai.records import REASONING_MAX_LINES, REASONING_MAX_WORDS

DATA = Path(__file__).resolve().parents[1] / "src" / "bonsai" / "nursery" / "data"
KEYS = ("id", "instruction", "input", "output", "category", "language", "reasoning")
LANGUAGES = {"ja", "en", "zh"}
KANA = re.compile(r"[\u3040-\u30ff]")
HAN = re.compile(r"[\u4e00-\u9fff]")
LATIN = re.compile(r"[A-Za-z]")


def _records(name: str) -> list[dict]:
    text = (DATA / name).read_bytes().decode("utf-8")
    assert text.endswith("\n"), f"{name} should end with a newline"
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            pytest.fail(f"{name} line {number}: {error}")
    return records


Q2Q = _records("question_to_question.jsonl")
CLASSIFICATION = _records("classification.jsonl")
PHRASINGS = json.loads((DATA / "translation_phrasings.json").read_text(encoding="utf-8"))


def _looks_like(text: str, language: str) -> bool:
    if language == "ja":
        return bool(KANA.search(text))
    if language == "zh":
        return bool(HAN.search(text)) and not KANA.search(text)
    return bool(LATIN.search(text)) and not (KANA.search(text) or HAN.search(text))


@pytest.mark.parametrize(
    ("records", "category", "prefix"),
    [(Q2Q, "question_to_question", "q2q-"), (CLASSIFICATION, "classification", "cls-")],
    ids=["q2q", "classification"],
)
def test_records_have_the_bonsai_shape(records: list[dict], category: str, prefix: str) -> None:
    for record in records:
        where = record.get("id", "?")
        assert tuple(record) == KEYS, where
        assert all(isinstance(record[key], str) for key in KEYS), where
        for key in ("id", "instruction", "output", "reasoning"):
            assert record[key].strip(), f"{where}: empty {key}"
        assert record["id"].startswith(prefix), where
        assert record["category"] == category, where
        assert record["language"] in LANGUAGES, where
        assert _looks_like(record["instruction"], record["language"]), where
        reasoning = record["reasoning"]
        assert reasoning.startswith("You should"), where
        assert len(reasoning.splitlines()) <= REASONING_MAX_LINES, where
        assert len(reasoning.split()) <= REASONING_MAX_WORDS, where


def test_no_duplicates() -> None:
    ids = [r["id"] for r in Q2Q + CLASSIFICATION]
    assert len(ids) == len(set(ids)), "an id is repeated"
    for records in (Q2Q, CLASSIFICATION):
        prompts = Counter((r["instruction"], r["input"]) for r in records)
        repeated = [prompt for prompt, count in prompts.items() if count > 1]
        assert not repeated, f"repeated instruction and input: {repeated}"


def test_question_to_question_outputs_are_two_to_four_questions() -> None:
    for record in Q2Q:
        questions = record["output"].split("\n")
        assert 2 <= len(questions) <= 4, record["id"]
        for question in questions:
            assert question == question.strip() and question, record["id"]
            assert question[-1] in "?？", f"{record['id']}: {question}"
            marks = question.count("?") + question.count("？")
            assert marks == 1, f"{record['id']}: one question per line: {question}"
            assert _looks_like(question, record["language"]), f"{record['id']}: {question}"
        assert len(questions) == len(set(questions)), f"{record['id']}: a question is repeated"
    outputs = [r["output"] for r in Q2Q]
    assert len(outputs) == len(set(outputs)), "two records ask the same follow-up questions"


def test_question_to_question_mix() -> None:
    counts = Counter(r["language"] for r in Q2Q)
    total = len(Q2Q)
    assert total >= 180
    assert 0.40 <= counts["ja"] / total <= 0.50
    assert 0.35 <= counts["en"] / total <= 0.45
    assert 0.10 <= counts["zh"] / total <= 0.20
    with_input = sum(1 for r in Q2Q if r["input"])
    assert 0.15 <= with_input / total <= 0.30


def test_classification_output_is_one_label_from_the_instruction() -> None:
    assert len(CLASSIFICATION) >= 80
    assert set(Counter(r["language"] for r in CLASSIFICATION)) == LANGUAGES
    for record in CLASSIFICATION:
        output = record["output"]
        assert output == output.strip() and "\n" not in output, record["id"]
        assert output in record["instruction"], record["id"]
        assert record["input"].strip(), f"{record['id']}: nothing to classify"


def _templates(direction: str) -> list[str]:
    """Each phrasing as the texts where `{text}` may go (one string, or instruction and input)."""
    texts = []
    for phrasing in PHRASINGS[direction]:
        if isinstance(phrasing, str):
            texts.append(phrasing)
        else:
            assert set(phrasing) == {"instruction", "input"}, phrasing
            assert phrasing["instruction"].strip() and "{text}" not in phrasing["instruction"]
            texts.append(phrasing["input"])
    return texts


@pytest.mark.parametrize("direction", ["ja-en", "en-ja"])
def test_translation_phrasings(direction: str) -> None:
    assert set(PHRASINGS) == {"ja-en", "en-ja"}
    phrasings = PHRASINGS[direction]
    assert len(phrasings) >= 25
    assert any(isinstance(p, dict) for p in phrasings), "some should put the text in the input"
    for template in _templates(direction):
        assert template.count("{text}") == 1, template
        # Only `{text}` may be a placeholder, so str.format fills it safely.
        assert template.format(text="X").count("X") == 1, template
    requests = [p if isinstance(p, str) else p["instruction"] for p in phrasings]
    assert any(KANA.search(p) for p in requests), "some requests should be in Japanese"
    assert any(not KANA.search(p) for p in requests), "some requests should be in English"
    keys = [json.dumps(p, ensure_ascii=False, sort_keys=True) for p in phrasings]
    assert len(keys) == len(set(keys)), "a phrasing is repeated"
