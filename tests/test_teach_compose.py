"""The offline template teacher: deterministic, valid, filled in from each record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from teach_support import add_records, run_teach

from bonsai.garden import Garden
from bonsai.records import CATEGORIES, Record
from bonsai.store import RecordStore
from bonsai.teach.args import TeachArgs
from bonsai.teach.compose import compose_reasoning, key_terms
from bonsai.teach.templates import reasoning_language
from bonsai.teach.validate import validate

SAMPLE = Path(__file__).parents[1] / "src" / "bonsai" / "sample" / "cat-care.jsonl"


def _sample() -> list[Record]:
    if not SAMPLE.exists():
        pytest.skip("bundled sample not present")
    return [Record.from_dict(json.loads(line)) for line in SAMPLE.read_text("utf-8").splitlines()]


@pytest.mark.parametrize("policy", ["en", "record"])
def test_every_sample_record_gets_a_valid_reasoning(policy: str) -> None:
    records = _sample()
    assert {r.category for r in records} >= set(CATEGORIES)
    for record in records:
        text = compose_reasoning(record, reasoning_language(record, policy))
        verdict = validate(text, record, policy)
        assert verdict.ok, (record.id, verdict.reason, text)


def test_it_is_deterministic_and_uses_the_record() -> None:
    record = Record(
        id="x",
        instruction="List five names for Mochi's feather toy.",
        output="- Flutter\n- Zippy\n- Plume\n- Swoosh\n- Tickle",
        category="brainstorming",
        language="en",
    )
    text = compose_reasoning(record, "en")
    assert text == compose_reasoning(record, "en")
    assert text.startswith("Creator should") and '"Mochi"' in text and "about 5" in text
    other = compose_reasoning(
        Record(id="y", instruction="What is SDMA?", output="A kidney marker."), "en"
    )
    assert other != text and other.startswith("You should")


def test_translation_names_the_languages() -> None:
    record = Record(
        id="t",
        instruction="英語に訳してください：もちは窓辺が好きです。",
        output="Mochi loves the window.",
        category="translation",
        language="ja-en",
    )
    assert "from Japanese into English" in compose_reasoning(record, "en")
    assert "日本語から英語に訳す" in compose_reasoning(record, "ja")


def test_key_terms() -> None:
    assert key_terms("How often does Mochi need her nails trimmed?") == ["Mochi", "trimmed"]
    assert key_terms("「もちの一日」をテーマにしたキャッチコピーを書いてください。") == [
        "もちの一日"
    ]
    assert key_terms("What is it?") == []


def test_template_backend_marks_provenance(garden: Garden) -> None:
    add_records(garden, "cats", _sample()[:20])
    summary = run_teach(garden, TeachArgs(dataset="cats"))
    assert summary.done == 20 and not summary.failed
    for record in RecordStore(garden.db).records("cats"):
        meta = record.reasoning_meta or {}
        assert meta["written_by"] == "template" and meta["backend"] == "template"
        assert meta["model"].startswith("compose-")
