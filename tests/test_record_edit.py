"""`bonsai data show|edit|rm ID`: single records fixed in place, each change undoable."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest

from bonsai.store import RecordStore


@pytest.fixture
def seeded(garden, cli, tmp_path: Path):
    path = tmp_path / "seed.jsonl"
    rows = [
        {"id": "a", "instruction": "Capital of France?", "output": "Lyon", "note": "typo"},
        {"id": "b", "instruction": "B?", "output": "2", "category": "open_qa"},
        {"id": "c", "instruction": "C?", "output": "3"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    assert cli("data", "import", path, "-d", "d", "--garden", garden.root).exit_code == 0
    return garden


def use_editor(monkeypatch, tmp_path: Path, code: str) -> None:
    """$EDITOR: a Python script given the file as sys.argv[1]; ``data`` is its one record."""
    script = tmp_path / "editor.py"
    script.write_text(
        "import json, sys\n"
        "path = sys.argv[1]\n"
        "data = json.load(open(path, encoding='utf-8'))[0]\n"
        f"{code}\n"
        "json.dump([data], open(path, 'w', encoding='utf-8'), ensure_ascii=False)\n",
        "utf-8",
    )
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR", f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}")


def record(garden, record_id: str):
    return RecordStore(garden.db).get("d", record_id)


def test_edit_changes_fields_and_undo_restores(seeded, cli, monkeypatch, tmp_path) -> None:
    use_editor(
        monkeypatch,
        tmp_path,
        "data['output'] = 'Paris'; data['category'] = 'closed_qa'; del data['note']",
    )
    result = cli("data", "edit", "a", "-g", seeded.root)
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "Edited a (output, category, extra.note)" in text
    edited = record(seeded, "a")
    assert edited.output == "Paris" and edited.category == "closed_qa"
    assert edited.category_source == "human" and edited.extra == {}
    history = RecordStore(seeded.db).history("d")
    assert (history[-1].kind, history[-1].description) == ("edit", "edit a")

    assert cli("data", "undo", "-g", seeded.root).exit_code == 0
    restored = record(seeded, "a")
    assert restored.output == "Lyon" and restored.extra == {"note": "typo"}


def test_an_edit_that_changes_nothing_records_nothing(seeded, cli, monkeypatch, tmp_path) -> None:
    use_editor(monkeypatch, tmp_path, "pass")
    result = cli("data", "edit", "b", "-g", seeded.root)
    assert result.exit_code == 0 and "No changes" in result.stdout
    assert len(RecordStore(seeded.db).history("d")) == 1


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("data['output'] = '   '", "field 'output'"),
        ("data['instruction'] = '\\u200b'", "U+200B"),
        ("data['category'] = 'poetry'", "unknown category 'poetry'"),
        ("data['id'] = 'z'", "an edit keeps the id"),
    ],
)
def test_a_refused_edit_names_the_field_and_keeps_the_text(
    seeded, cli, monkeypatch, tmp_path, code: str, message: str
) -> None:
    use_editor(monkeypatch, tmp_path, code)
    result = cli("data", "edit", "a", "-g", seeded.root)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output
    assert "your edit is kept in" in result.stderr
    kept = Path(result.stderr.split("your edit is kept in ")[1].split(";")[0])
    assert kept.is_file()
    assert record(seeded, "a").output == "Lyon"


def test_a_failing_or_missing_editor_is_a_clear_error(seeded, cli, monkeypatch) -> None:
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR", f"{shlex.quote(sys.executable)} -c 'raise SystemExit(3)'")
    result = cli("data", "edit", "a", "-g", seeded.root)
    assert result.exit_code == 2 and "exited with status 3" in result.stderr
    monkeypatch.setenv("EDITOR", "no-such-editor-anywhere")
    result = cli("data", "edit", "a", "-g", seeded.root)
    assert result.exit_code == 2 and "cannot start the editor" in result.stderr


def test_edit_of_an_unknown_record(seeded, cli) -> None:
    result = cli("data", "edit", "nope", "-g", seeded.root)
    assert result.exit_code == 2 and "no record 'nope'" in result.stderr


def test_rm_removes_and_undo_brings_back(seeded, cli) -> None:
    result = cli("data", "rm", "a", "c", "-g", seeded.root)
    assert result.exit_code == 0, result.output
    assert "Removed 2 record(s)" in result.stdout
    assert [r.id for r in RecordStore(seeded.db).records("d")] == ["b"]
    assert RecordStore(seeded.db).history("d")[-1].kind == "delete"
    assert cli("data", "undo", "-g", seeded.root).exit_code == 0
    assert sorted(r.id for r in RecordStore(seeded.db).records("d")) == ["a", "b", "c"]


def test_rm_with_an_unknown_id_removes_nothing(seeded, cli) -> None:
    result = cli("data", "rm", "a", "nope", "-g", seeded.root)
    assert result.exit_code == 2 and "no record 'nope'" in result.stderr
    assert len(RecordStore(seeded.db).records("d")) == 3


def test_show_one_record(seeded, cli) -> None:
    result = cli("data", "show", "a", "-g", seeded.root)
    assert result.exit_code == 0 and "Lyon" in result.stdout and "extra.note" in result.stdout
