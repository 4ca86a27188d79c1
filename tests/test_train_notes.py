"""Retrieval-aware training: which notes each training prompt carries."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from bonsai.errors import BonsaiError
from bonsai.records import Record
from bonsai.train.notes import DISTRACTORS, NONE, OWN, kind_of, read_notes_file, retrieved_notes


class FakeHit:
    def __init__(self, chunk_id: int, text: str) -> None:
        self.chunk_id, self.text = chunk_id, text
        self.title, self.heading, self.kind, self.source = "Log", f"Part {chunk_id}", "file", "n.md"


def test_half_own_notes_a_quarter_distractors_a_quarter_none() -> None:
    counts = Counter(kind_of(f"r{i}", seed=0) for i in range(4000))
    assert abs(counts[OWN] / 4000 - 0.5) < 0.04
    assert abs(counts[DISTRACTORS] / 4000 - 0.25) < 0.04
    assert abs(counts[NONE] / 4000 - 0.25) < 0.04
    assert kind_of("r1", 0) == kind_of("r1", 0)  # a resumed run sees the same prompts


def test_own_notes_are_retrieved_for_the_instruction_distractors_for_another() -> None:
    records = [Record(id=f"r{i}", instruction=f"question {i}", output="a") for i in range(40)]
    number = {r.instruction: i for i, r in enumerate(records)}

    def retrieve(query: str, k: int) -> list[FakeHit]:
        i = number[query]
        return [FakeHit(i, f"note about {i}")]

    notes = retrieved_notes(records, retrieve, seed=0, k=3, max_chars=500)
    for record in records:
        kind = kind_of(record.id, 0)
        own = f"note about {record.id[1:]}\n"
        if kind == OWN:
            assert own.strip() in notes[record.id]
            assert notes[record.id].startswith("[1] Log > Part")
        elif kind == DISTRACTORS:
            assert own not in notes[record.id] + "\n"
        else:
            assert record.id not in notes


def test_a_records_own_chunk_is_never_among_its_notes() -> None:
    records = [Record(id=f"r{i}", instruction=f"question {i}", output="a") for i in range(20)]

    def retrieve(query: str, k: int) -> list[FakeHit]:
        own = FakeHit(0, "the answer itself")
        own.source = f"dataset:cats#r{query.split()[-1]}"
        return [own, FakeHit(1, "other knowledge")][:k]

    notes = retrieved_notes(records, retrieve, seed=0, k=1, max_chars=500)
    assert notes and all("the answer itself" not in text for text in notes.values())


def test_a_notes_file_must_map_ids_to_text(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text('{"r1": "[1]\\nA note."}', "utf-8")
    assert read_notes_file(good) == {"r1": "[1]\nA note."}
    bad = tmp_path / "bad.json"
    bad.write_text('["not", "a", "map"]', "utf-8")
    with pytest.raises(BonsaiError, match="record id"):
        read_notes_file(bad)
    with pytest.raises(BonsaiError, match="cannot read"):
        read_notes_file(tmp_path / "missing.json")


def test_a_notes_file_counts_only_the_prompts_of_the_run(tiny_model_dir: Path, tmp_path: Path):
    import json

    from bonsai.garden import Garden
    from bonsai.store import Change, RecordStore
    from bonsai.train.args import TrainArgs
    from bonsai.train.prepare import prepare

    garden = Garden.init(tmp_path / "g")
    records = [
        Record(
            id=f"r{i}",
            instruction=f"Q {i}?",
            output="A.",
            category="open_qa",
            language="en",
            shard=i % 2,
        )
        for i in range(20)
    ]
    RecordStore(garden.db).apply(
        "d", [Change(None, r) for r in records], kind="import", description="t"
    )
    notes_file = tmp_path / "notes.json"
    # Notes for every record of both shards, and for records the garden does not hold.
    notes = {f"r{i}": "[1]\nA note." for i in range(20)} | {f"x{i}": "[1]\nX." for i in range(9)}
    notes_file.write_text(json.dumps(notes), "utf-8")
    args = TrainArgs(
        dataset="d",
        base_model=str(tiny_model_dir),
        layout="alpaca",
        from_run="base",
        shard=0,
        notes=str(notes_file),
    )
    prep = prepare(garden, args)
    said = [note for note in prep.notes if note.startswith("notes in ")]
    assert said == [f"notes in 10 of 10 prompts (--notes {notes_file})"]
    garden.close()
