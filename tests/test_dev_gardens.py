"""The development gardens in bench/gardens: records that import, notes in two languages, and
held-out questions that are well formed and never leak into the records."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import pytest

from bonsai.curate.language import script_language
from bonsai.garden import Garden
from bonsai.records import CATEGORIES, REASONING_MAX_LINES, REASONING_MAX_WORDS
from bonsai.sample import notes_dir as sample_notes_dir
from bonsai.sample import records_path as sample_records_path
from bonsai.store import RecordStore

REPO = Path(__file__).resolve().parents[1]
GARDENS = REPO / "bench" / "gardens"
SOURDOUGH = GARDENS / "sourdough"
KEYS = ["id", "instruction", "input", "output", "category", "language", "reasoning"]

sys.path.insert(0, str(REPO / "bench"))
from quality_scoring import Question, load_questions, normalise  # noqa: E402

# (records, notes folder, questions) of every garden that has held-out questions.
QUESTION_SETS = {
    "sourdough": (SOURDOUGH / "records.jsonl", SOURDOUGH / "notes", SOURDOUGH / "questions.jsonl"),
    "cat-care": (sample_records_path(), sample_notes_dir(), GARDENS / "cat-care-questions.jsonl"),
}
MINIMUM = {"facts": 15, "closed": 3, "labels": 4, "translation": 6, "q2q": 4}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return read_jsonl(SOURDOUGH / "records.jsonl")


def test_records_have_the_sample_format(records: list[dict]) -> None:
    assert len(records) >= 80
    assert all(list(r) == KEYS for r in records)
    ids = [r["id"] for r in records]
    assert len(set(ids)) == len(ids)
    for r in records:
        assert r["instruction"].strip() and r["output"].strip(), r["id"]
        lines = r["reasoning"].splitlines()
        assert (
            len(lines) <= REASONING_MAX_LINES and len(r["reasoning"].split()) <= REASONING_MAX_WORDS
        )
        starts = ("You should", "Creator should")
        assert all(line.startswith(starts) for line in lines), r["id"]


def test_records_cover_seven_categories_and_three_languages(records: list[dict]) -> None:
    assert {r["category"] for r in records} == set(CATEGORIES)
    sources = Counter(r["language"].split("-")[0] for r in records)
    assert set(sources) == {"en", "ja", "zh"}
    for category in CATEGORIES:
        languages = {r["language"] for r in records if r["category"] == category}
        assert len(languages) >= 3, (category, languages)
    translations = [r for r in records if r["category"] == "translation"]
    assert all("-" in r["language"] for r in translations)
    assert {"en-ja", "ja-en"} <= {r["language"] for r in translations}


def test_records_import_cleanly_with_the_cli(cli, tmp_path: Path) -> None:
    garden = Garden.init(tmp_path / "garden")
    try:
        result = cli(
            "data", "import", SOURDOUGH / "records.jsonl", "-d", "bread", "-g", garden.root
        )
        assert result.exit_code == 0, result.output
        assert "warning" not in result.output.lower()
        stored = RecordStore(garden.db).records("bread")
        assert [r.id for r in stored] == [r["id"] for r in read_jsonl(SOURDOUGH / "records.jsonl")]
        assert Counter(r.category for r in stored) == Counter(
            r["category"] for r in read_jsonl(SOURDOUGH / "records.jsonl")
        )
    finally:
        garden.close()


def test_notes_are_the_keepers_own_in_english_and_japanese() -> None:
    notes = sorted((SOURDOUGH / "notes").glob("*.md"))
    assert len(notes) >= 3
    languages = {script_language(n.read_text(encoding="utf-8")) or "en" for n in notes}
    assert {"en", "ja"} <= languages
    assert "Apache-2.0" in (SOURDOUGH / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(QUESTION_SETS))
def test_questions_are_well_formed(name: str) -> None:
    questions = load_questions(QUESTION_SETS[name][2])
    assert len(questions) >= 30
    kinds = Counter(q.kind for q in questions)
    for kind, least in MINIMUM.items():
        assert kinds[kind] >= least, (kind, kinds)
    translations = [q for q in questions if q.kind == "translation"]
    assert Counter(q.target_language for q in translations) == {"en": 3, "ja": 3}
    asked_in = {q.language.split("-")[0] for q in questions}
    assert {"en", "ja", "zh"} <= asked_in


@pytest.mark.parametrize("name", sorted(QUESTION_SETS))
def test_facts_come_from_the_notes(name: str) -> None:
    notes_dir = QUESTION_SETS[name][1]
    notes = {p.name for p in notes_dir.glob("*.md")}
    facts = [q for q in load_questions(QUESTION_SETS[name][2]) if q.kind == "facts"]
    for q in facts:
        assert q.source.removeprefix("notes/") in notes, q.id
    # Some are asked in another language than the note they come from.
    crossed = [
        q
        for q in facts
        if _note_language(notes_dir / q.source.removeprefix("notes/")) != q.language
    ]
    assert len(crossed) >= 3


def _note_language(path: Path) -> str:
    return script_language(path.read_text(encoding="utf-8")) or "en"


@pytest.mark.parametrize("name", sorted(QUESTION_SETS))
def test_no_question_leaks_into_the_records(name: str) -> None:
    records_path, _, questions_path = QUESTION_SETS[name]
    texts = [
        normalise(r[field])
        for r in read_jsonl(records_path)
        for field in ("instruction", "input", "output")
        if r[field]
    ]
    for q in load_questions(questions_path):
        asked = normalise(q.question)
        assert not any(asked in text for text in texts), f"{q.id} is in the records"
        if q.input:
            assert not any(normalise(q.input) in text for text in texts), f"{q.id}'s input"
        if q.kind == "translation":
            for reference in q.accepted:
                assert not any(normalise(reference) == text for text in texts), q.id


def test_question_ids_do_not_collide_across_gardens() -> None:
    ids: list[str] = []
    for _, _, path in QUESTION_SETS.values():
        ids += [q.id for q in load_questions(path)]
    assert len(ids) == len(set(ids))


def test_a_question_message_carries_its_text() -> None:
    q = Question(id="x", category="closed_qa", question="How long?", input="Bulk took 5 h.")
    assert q.message() == "How long?\n\nBulk took 5 h."
