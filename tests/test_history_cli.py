"""`bonsai data history|undo|list|show`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bonsai.store import RecordStore


@pytest.fixture
def two_imports(garden, cli, tmp_path: Path):
    v1 = tmp_path / "v1.jsonl"
    v1.write_text(
        '{"id": "a", "instruction": "Name a [bold]cat[/bold]", "output": "タマ",'
        ' "category": "open_qa", "language": "ja", "topic": "pets"}\n'
        '{"id": "b", "instruction": "B", "output": "2"}\n',
        "utf-8",
    )
    v2 = tmp_path / "v2.jsonl"
    v2.write_text(
        '{"id": "a", "instruction": "Name a [bold]cat[/bold]", "output": "ミケ"}\n', "utf-8"
    )
    for path in (v1, v2):
        assert cli("data", "import", path, "-d", "pets", "-g", garden.root).exit_code == 0
    return garden


def test_history_table_and_json(two_imports, cli) -> None:
    result = cli("data", "history", "-d", "pets", "-g", two_imports.root)
    assert result.exit_code == 0, result.output
    assert "import v1.jsonl (jsonl)" in result.stdout and "added 2" in result.stdout
    assert "import v2.jsonl (jsonl)" in result.stdout and "changed 1" in result.stdout
    rows = json.loads(cli("data", "history", "-d", "pets", "--json", "-g", two_imports.root).stdout)
    assert [(r["id"], r["kind"], r["records"], r["undone_by"]) for r in rows] == [
        (1, "import", 2, None),
        (2, "import", 1, None),
    ]
    assert rows[1]["summary"]["absent"] == 1


def test_undo_latest_then_by_id(two_imports, cli) -> None:
    store = RecordStore(two_imports.db)
    result = cli("data", "undo", "-d", "pets", "-g", two_imports.root)
    assert result.exit_code == 0, result.output
    assert "Undid change #2" in result.stdout and "Recorded as change #3" in result.stdout
    assert store.get("pets", "a").output == "タマ"
    rows = json.loads(cli("data", "history", "-d", "pets", "--json", "-g", two_imports.root).stdout)
    assert rows[1]["undone_by"] == 3 and rows[2]["kind"] == "undo"
    table = cli("data", "history", "-d", "pets", "-g", two_imports.root).stdout
    assert "by #3" in table

    result = cli("data", "undo", "-d", "pets", "1", "-g", two_imports.root)
    assert result.exit_code == 0, result.output
    assert store.count("pets") == 0

    result = cli("data", "undo", "-d", "pets", "-g", two_imports.root)
    assert result.exit_code == 2 and "nothing to undo" in result.stderr


def test_undo_of_an_unknown_change(two_imports, cli) -> None:
    result = cli("data", "undo", "-d", "pets", "99", "-g", two_imports.root)
    assert result.exit_code == 2 and "change #99" in result.stderr
    assert "Traceback" not in result.output


def test_list(two_imports, cli, tmp_path: Path) -> None:
    result = cli("data", "list", "-g", two_imports.root)
    assert result.exit_code == 0, result.output
    (line,) = [line for line in result.stdout.splitlines() if "pets" in line]
    assert [cell for cell in line.replace("│", " ").split()] == [
        "pets",
        "2",
        "1",
        "0",
        "0",
        "0",
        "2",
    ]


def test_list_of_an_empty_garden(garden, cli) -> None:
    result = cli("data", "list", "-g", garden.root)
    assert result.exit_code == 0 and "No datasets yet" in result.stdout


def test_show_one_record_and_a_table(two_imports, cli) -> None:
    result = cli("data", "show", "-d", "pets", "a", "-g", two_imports.root)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Name a [bold]cat[/bold]" in out  # user text is printed, not read as markup
    assert "ミケ" in out and "open_qa (human)" in out and "ja (human)" in out
    assert "extra.topic" in out and "pets" in out

    result = cli("data", "show", "-d", "pets", "--limit", "1", "-g", two_imports.root)
    assert result.exit_code == 0, result.output
    assert "1 of 2 records" in result.stdout and "タマ" not in result.stdout


def test_show_errors(two_imports, cli) -> None:
    result = cli("data", "show", "-d", "pets", "zzz", "-g", two_imports.root)
    assert result.exit_code == 2 and "no record 'zzz'" in result.stderr
    result = cli("data", "history", "-d", "nope", "-g", two_imports.root)
    assert result.exit_code == 2 and "no dataset named 'nope'" in result.stderr


def test_help_reads_well(cli) -> None:
    result = cli("data", "--help")
    for command in ("import", "export", "history", "undo", "list", "show"):
        assert command in result.stdout
    result = cli("data", "import", "--help")
    assert "--map" in result.stdout and "--delete-absent" in result.stdout
