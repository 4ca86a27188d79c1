"""Two commands writing the same garden at once, as real processes: nothing lost, no traceback."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from db_support import Locker, bonsai_process, finish

from bonsai.store import RecordStore


@pytest.fixture
def seeded(garden, cli, tmp_path: Path):
    path = tmp_path / "seed.jsonl"
    path.write_text(
        '{"id": "a", "instruction": "A", "output": "1"}\n'
        '{"id": "b", "instruction": "B", "output": "2"}\n',
        "utf-8",
    )
    assert cli("data", "import", path, "-d", "d", "--garden", garden.root).exit_code == 0
    garden.close()
    return garden


def test_two_imports_at_once_keep_both_edits(seeded, tmp_path: Path) -> None:
    """Each import changes a different field of record 'a'; run one after the other, both
    changes survive, so they must when run at once too."""
    reasoning = tmp_path / "reasoning.csv"
    reasoning.write_text("id,instruction,output,reasoning\na,A,1,because\nb,B,2,\n", "utf-8")
    categories = tmp_path / "categories.csv"
    categories.write_text("id,instruction,output,category\na,A,1,open_qa\nb,B,2,\n", "utf-8")
    locker = Locker(seeded.db_path)
    first = bonsai_process("data", "import", reasoning, "-d", "d", "-g", seeded.root)
    second = bonsai_process("data", "import", categories, "-d", "d", "-g", seeded.root)
    time.sleep(6)  # both have read their files and wait for the lock
    locker.release()
    results = [finish(first), finish(second)]
    for code, output in results:
        assert code == 0 and "Traceback" not in output, output
    record = RecordStore(seeded.db).get("d", "a")
    assert record is not None
    assert record.reasoning == "because" and record.category == "open_qa", results


def test_two_imports_into_a_new_dataset(seeded, tmp_path: Path) -> None:
    path = tmp_path / "new.jsonl"
    path.write_text('{"id": "x", "instruction": "X", "output": "1"}\n', "utf-8")
    locker = Locker(seeded.db_path)
    processes = [
        bonsai_process("data", "import", path, "-d", "fresh", "-g", seeded.root) for _ in "ab"
    ]
    time.sleep(6)
    locker.release()
    results = [finish(p) for p in processes]
    for code, output in results:
        assert code == 0 and "Traceback" not in output, output
    assert sorted(" ".join(o.split()) for _, o in results)[0].count("Nothing changed") == 1
    assert [r.id for r in RecordStore(seeded.db).records("fresh")] == ["x"]


def test_a_change_planned_on_a_stale_record_is_refused(seeded) -> None:
    """Commands that plan outside the write lock (annotate, split, teach) never overwrite."""
    import dataclasses

    from bonsai.errors import ConflictError
    from bonsai.store import Change

    store = RecordStore(seeded.db)
    stale = store.get("d", "a")
    assert stale is not None
    store.update("d", [dataclasses.replace(stale, output="edited")], kind="edit", description="e")
    history = len(store.history("d"))
    with pytest.raises(ConflictError, match="changed by another command"):
        store.apply(
            "d",
            [Change(stale, dataclasses.replace(stale, category="open_qa"))],
            kind="annotate",
            description="late",
        )
    assert store.get("d", "a").output == "edited"  # type: ignore[union-attr]
    assert len(store.history("d")) == history


def test_an_update_computed_from_stale_records_is_refused(seeded) -> None:
    """annotate and split compute for minutes from what they read; an edit meanwhile stays."""
    import dataclasses

    from bonsai.errors import ConflictError

    store = RecordStore(seeded.db)
    read = store.records("d")
    annotated = [dataclasses.replace(r, language="en") for r in read]
    edited = dataclasses.replace(read[0], output="edited meanwhile")
    store.update("d", [edited], kind="edit", description="edit a")
    with pytest.raises(ConflictError):
        store.update("d", annotated, kind="annotate", description="late", basis=read)
    assert store.get("d", "a").output == "edited meanwhile"  # type: ignore[union-attr]
    assert store.get("d", "b").language is None  # type: ignore[union-attr]


def test_two_undos_at_once_undo_two_changes(seeded, tmp_path: Path) -> None:
    more = tmp_path / "more.jsonl"
    more.write_text('{"id": "c", "instruction": "C", "output": "3"}\n', "utf-8")
    first = bonsai_process("data", "import", more, "-d", "d", "-g", seeded.root)
    assert finish(first)[0] == 0
    locker = Locker(seeded.db_path)
    undos = [bonsai_process("data", "undo", "-d", "d", "-g", seeded.root) for _ in "ab"]
    time.sleep(6)
    locker.release()
    results = [finish(p) for p in undos]
    for code, output in results:
        assert code == 0 and "Traceback" not in output, output
    store = RecordStore(seeded.db)
    assert store.records("d") == []
    assert sorted(c.undone_by is not None for c in store.history("d") if c.kind != "undo") == [
        True,
        True,
    ]
