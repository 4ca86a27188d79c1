"""Re-importing into an existing dataset: match by id, change only what the file carries."""

from __future__ import annotations

import json
from pathlib import Path

from bonsai.curate.importer import import_file
from bonsai.records import Record
from bonsai.store import RecordStore


def write_jsonl(path: Path, objects: list[dict]) -> Path:
    path.write_text("".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objects), "utf-8")
    return path


ROWS = [
    {"id": "a", "instruction": "A", "output": "1", "category": "open_qa"},
    {"id": "b", "instruction": "B", "output": "2", "category": "creative"},
    {"id": "c", "instruction": "C", "output": "3"},
]


def test_counts_added_changed_unchanged_absent(garden, tmp_path: Path) -> None:
    import_file(garden, write_jsonl(tmp_path / "v1.jsonl", ROWS), "d")
    v2 = [
        {**ROWS[0], "output": "one"},  # changed
        ROWS[1],  # unchanged
        {"id": "new", "instruction": "N", "output": "n"},  # added; 'c' is absent
    ]
    report = import_file(garden, write_jsonl(tmp_path / "v2.jsonl", v2), "d")
    assert report.counts() == {"added": 1, "changed": 1, "unchanged": 1, "absent": 1, "deleted": 0}
    assert report.changed_fields == {"a": ["output"]}
    store = RecordStore(garden.db)
    assert [r.id for r in store.records("d")] == ["a", "b", "c", "new"]  # absent one kept
    assert store.get("d", "a").output == "one"


def test_fields_the_file_lacks_are_kept(garden, tmp_path: Path) -> None:
    import_file(garden, write_jsonl(tmp_path / "v1.jsonl", ROWS), "d")
    store = RecordStore(garden.db)
    a = store.get("d", "a")
    a.reasoning, a.language, a.extra = "You should answer.", "en", {"topic": "cats"}
    store.update("d", [a], kind="teach", description="reasoning")
    # A file with no reasoning, language or extra columns changes the output only.
    v2 = [{"id": "a", "instruction": "A", "output": "uno", "category": "open_qa"}]
    report = import_file(garden, write_jsonl(tmp_path / "v2.jsonl", v2), "d")
    assert report.changed == 1
    after = store.get("d", "a")
    assert after.output == "uno"
    assert (after.reasoning, after.language, after.extra) == (
        "You should answer.",
        "en",
        {"topic": "cats"},
    )


def test_unchanged_values_keep_their_provenance(garden, tmp_path: Path) -> None:
    import_file(garden, write_jsonl(tmp_path / "v1.jsonl", ROWS), "d")
    store = RecordStore(garden.db)
    c = store.get("d", "c")
    c.category, c.category_source, c.category_confidence = "open_qa", "auto", 0.8
    store.update("d", [c], kind="annotate", description="suggest")
    same = [*ROWS[:2], {**ROWS[2], "category": "open_qa"}]
    report = import_file(garden, write_jsonl(tmp_path / "v2.jsonl", same), "d")
    assert report.changed == 0
    assert store.get("d", "c").category_source == "auto"
    edited = [*ROWS[:2], {**ROWS[2], "category": "brainstorming"}]
    report = import_file(garden, write_jsonl(tmp_path / "v3.jsonl", edited), "d")
    after = store.get("d", "c")
    assert (after.category, after.category_source, after.category_confidence) == (
        "brainstorming",
        "human",
        None,
    )
    assert report.changed_fields == {"c": ["category", "source_category"]}


def test_delete_absent_is_recorded_and_undoable(garden, tmp_path: Path) -> None:
    import_file(garden, write_jsonl(tmp_path / "v1.jsonl", ROWS), "d")
    report = import_file(
        garden, write_jsonl(tmp_path / "v2.jsonl", ROWS[:1]), "d", delete_absent=True
    )
    assert (report.absent, report.deleted) == (2, 2)
    store = RecordStore(garden.db)
    assert [r.id for r in store.records("d")] == ["a"]
    assert store.history("d")[-1].summary["deleted"] == 2
    store.undo("d")
    assert [r.id for r in store.records("d")] == ["a", "b", "c"]


def test_dry_run_writes_nothing(garden, tmp_path: Path) -> None:
    import_file(garden, write_jsonl(tmp_path / "v1.jsonl", ROWS), "d")
    store = RecordStore(garden.db)
    before = (store.records("d"), len(store.history("d")))
    report = import_file(
        garden,
        write_jsonl(tmp_path / "v2.jsonl", [{**ROWS[0], "output": "x"}]),
        "d",
        delete_absent=True,
        dry_run=True,
    )
    assert (report.changed, report.deleted, report.changeset_id) == (1, 2, None)
    assert (store.records("d"), len(store.history("d"))) == before


def test_dry_run_into_a_new_dataset_creates_nothing(garden, tmp_path: Path) -> None:
    report = import_file(garden, write_jsonl(tmp_path / "v1.jsonl", ROWS), "new", dry_run=True)
    assert report.added == 3
    assert RecordStore(garden.db).dataset_names() == []


def test_reimport_without_ids_matches_by_content(garden, tmp_path: Path) -> None:
    rows = [{"instruction": "Q", "output": "A"}, {"instruction": "Q", "output": "A"}]
    first = import_file(garden, write_jsonl(tmp_path / "v1.jsonl", rows), "d")
    again = import_file(garden, write_jsonl(tmp_path / "v1.jsonl", rows), "d")
    assert (first.added, again.added, again.unchanged) == (2, 0, 2)


def test_cli_report_and_dry_run(garden, cli, tmp_path: Path) -> None:
    v1 = write_jsonl(tmp_path / "v1.jsonl", ROWS)
    assert cli("data", "import", v1, "-d", "d", "-g", garden.root).exit_code == 0
    v2 = write_jsonl(tmp_path / "v2.jsonl", [{**ROWS[0], "output": "one"}, ROWS[1]])
    result = cli("data", "import", v2, "-d", "d", "-g", garden.root, "--dry-run")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Would import v2.jsonl (jsonl, 2 records)" in out
    lines = {line.split()[0]: line.split()[-1] for line in out.splitlines() if line.strip()}
    assert (lines["added"], lines["changed"], lines["unchanged"], lines["absent"]) == (
        "0",
        "1",
        "1",
        "1",
    )
    assert "a: output" in out and "Dry run: nothing was written." in out
    assert RecordStore(garden.db).get("d", "a").output == "1"


def test_typed_extra_survives_a_csv_round_trip(garden, tmp_path: Path) -> None:
    from bonsai.curate.exporter import export_dataset

    rows = [{**ROWS[0], "flags": {"hard": True}, "score": 3, "ok": False}]
    import_file(garden, write_jsonl(tmp_path / "v1.jsonl", rows), "d")
    out = export_dataset(garden, "d", "csv", tmp_path / "d.csv")
    report = import_file(garden, out, "d")
    assert (report.changed, report.unchanged) == (0, 1)
    record: Record = RecordStore(garden.db).get("d", "a")
    assert record.extra == {"flags": {"hard": True}, "score": 3, "ok": False}
