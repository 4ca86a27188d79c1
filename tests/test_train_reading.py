"""Reading records: questions made from the keeper's notes, answered with the statement."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from bonsai.errors import BonsaiError
from bonsai.garden import Garden
from bonsai.records import Record
from bonsai.store import Change, RecordStore
from bonsai.train.args import TrainArgs
from bonsai.train.prepare import prepare
from bonsai.train.reading import (
    QUESTIONS,
    reading_records,
    statements,
    term_frequency,
    unique_term,
)

SAMPLE_NOTES = Path(__file__).resolve().parents[1] / "src" / "bonsai" / "sample" / "notes"


class FakeHit:
    def __init__(self, chunk_id: int, text: str) -> None:
        self.chunk_id, self.text = chunk_id, text
        self.title, self.heading, self.kind, self.source = "Log", "Part", "file", "n.md"


def test_statements_are_sentences_list_items_and_table_rows() -> None:
    text = (
        "Dr. Tanaka checks her kidneys every April. The last SDMA was 15.\n"
        "- **Tools:** a soft rubber brush and a bristle\n  brush for finishing.\n"
        "\n| Item | Amount |\n|---|---|\n| Dry food | 35 g a day |\n"
        "毎週日曜に焼く。水分は75%にしている。\n"
    )
    found = [s.text for s in statements(text)]
    assert found == [
        "Dr. Tanaka checks her kidneys every April.",  # no break after "Dr."
        "The last SDMA was 15.",
        "Tools: a soft rubber brush and a bristle brush for finishing.",  # one item, no markup
        "Dry food: 35 g a day",  # a row, without the header row
        "毎週日曜に焼く。",
        "水分は75%にしている。",
    ]
    assert [s.language for s in statements(text)][-2:] == ["ja", "ja"]


def test_the_term_asked_about_is_held_by_no_other_statement() -> None:
    same = statements("The banneton is 22 cm wide. The banneton is 8 cm deep.")
    frequency = term_frequency(same)
    assert [unique_term(s, frequency) for s in same] == ["wide", "deep"]
    only_shared = statements("The banneton is 22 cm. The banneton is 8 cm.")
    assert [unique_term(s, term_frequency(only_shared)) for s in only_shared] == [None, None]
    named = statements("At 21:00 I refresh Kumo with flour. The flour is organic.")
    assert unique_term(named[0], term_frequency(named)) == "Kumo"  # a name before a longer word


def test_one_record_per_section_in_the_statements_language_with_its_notes() -> None:
    sections = [
        (1, "Loaf", "Loaf > Formula", "Water: 375 g, the hydration is 75%.\nSalt is weighed."),
        (
            2,
            "焼成記録",
            "焼成記録 > #6",
            "生地温度28℃の日に過発酵。成形しようとしたら生地がだれた。",
        ),
        (3, "笔记", "笔记 > 玩耍", "每天两次，用羽毛逗猫棒。"),
        (4, "Loaf", "Loaf > Empty", "Short."),
    ]
    asked: list[str] = []

    def retrieve(query: str, k: int) -> list[FakeHit]:
        asked.append(query)
        return [FakeHit(len(asked), f"note for {query}")]

    reading = reading_records(sections, retrieve, seed=0, limit=10, k=3, max_chars=500)
    by_id = {r.id: r for r in reading.records}
    assert sorted(by_id) == ["reading-1", "reading-2", "reading-3"]  # section 4 has nothing
    english, japanese, chinese = by_id["reading-1"], by_id["reading-2"], by_id["reading-3"]
    assert english.output == "Water: 375 g, the hydration is 75%."  # the one with a number
    assert english.instruction == QUESTIONS["en"].format(term="hydration")
    assert japanese.language == "ja" and japanese.instruction.endswith("メモには何と書いてある？")
    assert "28℃" in japanese.output
    assert chinese.language == "zh" and chinese.output == "每天两次，用羽毛逗猫棒。"
    assert all(r.category == "open_qa" and r.reasoning for r in reading.records)
    assert sorted(asked) == sorted(r.instruction for r in reading.records)
    assert reading.notes["reading-1"].endswith(f"note for {english.instruction}")
    again = reading_records(sections, retrieve, seed=0, limit=10, k=3, max_chars=500)
    assert again.records == reading.records  # a resumed run sees the same records
    assert (
        len(reading_records(sections, retrieve, seed=0, limit=2, k=3, max_chars=500).records) == 2
    )


def test_a_run_adds_reading_records_from_the_gardens_notes(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bonsai.rag.embed import HashingEncoder
    from bonsai.rag.notes import add_paths

    monkeypatch.setenv("BONSAI_EMBED_MODEL", "hashing")
    garden = Garden.init(tmp_path / "g")
    records = [
        Record(id=f"r{i}", instruction=f"Q {i}?", output="A.", category="open_qa", language="en")
        for i in range(40)
    ]
    RecordStore(garden.db).apply(
        "d", [Change(None, r) for r in records], kind="import", description="t"
    )
    args = TrainArgs(
        dataset="d", base_model=str(tiny_model_dir), layout="alpaca", from_run="base", reading="on"
    )
    without_notes = prepare(garden, args)
    assert not any(e.record_id.startswith("reading-") for e in without_notes.train)

    add_paths(garden, [SAMPLE_NOTES], encoder=HashingEncoder())
    prep = prepare(garden, args)
    reading = {e.record_id for e in prep.train if e.record_id.startswith("reading-")}
    said = [note for note in prep.notes if "reading records from" in note]
    assert said and said[0].endswith("note sections (--reading on)")
    made = int(said[0].split()[0])
    assert 0 < len(reading) <= made <= len(prep.split.train) // 4  # at most a quarter as many
    assert not any(e.record_id.startswith("reading-") for e in prep.val)
    off = prepare(garden, replace(args, reading="off"))
    assert not any(e.record_id.startswith("reading-") for e in off.train)
    default = TrainArgs(dataset="d", base_model=str(tiny_model_dir), layout="alpaca")
    assert default.reading == "off"
    garden.close()


def test_an_unknown_reading_mode_is_refused() -> None:
    with pytest.raises(BonsaiError, match="--reading"):
        TrainArgs(dataset="d", reading="sometimes")
