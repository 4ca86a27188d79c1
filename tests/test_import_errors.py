"""Bad input: one clear message naming file, line/row and field; exit 2; garden untouched."""

from __future__ import annotations

import json
import time
import tracemalloc
from pathlib import Path

import pytest

from bonsai.curate.importer import read_records
from bonsai.errors import BonsaiError


def snapshot(garden) -> tuple:
    """Everything an import could write, to compare before and after."""
    db = garden.db
    return tuple(
        tuple(tuple(row) for row in db.execute(f"SELECT * FROM {table} ORDER BY 1, 2"))
        for table in ("datasets", "records", "changesets", "record_changes")
    )


@pytest.fixture
def seeded(garden, cli, tmp_path: Path):
    """A garden whose dataset 'd' already holds two records."""
    path = tmp_path / "seed.jsonl"
    path.write_text(
        '{"id": "a", "instruction": "A", "output": "1"}\n'
        '{"id": "b", "instruction": "B", "output": "2"}\n',
        "utf-8",
    )
    assert cli("data", "import", path, "-d", "d", "--garden", garden.root).exit_code == 0
    return garden


def fails(cli, garden, path: Path, *extra: str) -> str:
    """Import ``path`` into 'd' and check the failure is clean; returns the message."""
    before = snapshot(garden)
    result = cli("data", "import", path, "-d", "d", "--garden", garden.root, *extra)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    message = result.stderr.strip()
    assert message.startswith("error:") and "\n" not in message, message
    assert snapshot(garden) == before
    return message


def test_broken_json_names_line_and_column(seeded, cli, tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('[\n  {"instruction": "A", "output": "1"}\n  {"instruction": "B"}\n]', "utf-8")
    message = fails(cli, seeded, path)
    assert "broken.json" in message and "line 3, column 3" in message
    assert "expected ',' or ']'" in message


def test_broken_json_inside_a_record(seeded, cli, tmp_path: Path) -> None:
    path = tmp_path / "broken2.json"
    path.write_text('[{"instruction": "A", "output": "1",}]', "utf-8")
    message = fails(cli, seeded, path)
    assert "line 1, column 37" in message and "property name" in message


def test_broken_jsonl_line(seeded, cli, tmp_path: Path) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_text(
        '{"instruction": "A", "output": "1"}\n\n{"instruction": "B", "output": 2\n', "utf-8"
    )
    message = fails(cli, seeded, path)
    assert "broken.jsonl, line 3" in message and "broken JSON Lines" in message


def test_missing_required_columns(seeded, cli, tmp_path: Path) -> None:
    path = tmp_path / "cols.csv"
    path.write_text("prompt,answer\nHi,Hello\n", "utf-8")
    message = fails(cli, seeded, path)
    assert "missing required column(s): instruction, output" in message
    assert "found: answer, prompt" in message and "--map" in message


def test_map_of_a_column_that_is_not_there(seeded, cli, tmp_path: Path) -> None:
    path = tmp_path / "cols.csv"
    path.write_text("prompt,output\nHi,Hello\n", "utf-8")
    message = fails(cli, seeded, path, "--map", "question=instruction")
    assert "no column 'question'" in message and "found: output, prompt" in message


def test_unknown_category(seeded, cli, tmp_path: Path) -> None:
    path = tmp_path / "cat.jsonl"
    path.write_text(
        '{"instruction": "A", "output": "1", "category": "open_qa"}\n'
        '{"instruction": "B", "output": "2", "category": "poetry"}\n',
        "utf-8",
    )
    message = fails(cli, seeded, path)
    assert "cat.jsonl, line 2, field 'category'" in message
    assert "unknown category 'poetry'" in message
    assert "open_qa, closed_qa, classification" in message and "creative_writing" in message


def test_empty_instruction(seeded, cli, tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text("instruction,output\nA,1\n  ,2\n", "utf-8")
    message = fails(cli, seeded, path)
    assert "e.csv, row 3, field 'instruction'" in message and "empty" in message


def test_non_utf8_bytes(seeded, cli, tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("instruction,output\nA,1\nCaf\u00e9,2\n".encode("latin-1"))
    message = fails(cli, seeded, path)
    assert "not valid UTF-8" in message and "byte 0xe9 at byte offset 26" in message
    assert "line 3" in message and "re-save the file as UTF-8" in message


def test_empty_files(seeded, cli, tmp_path: Path) -> None:
    for name, content in (("empty.jsonl", ""), ("blank.json", "  \n\n"), ("empty.csv", "")):
        path = tmp_path / name
        path.write_text(content, "utf-8")
        assert "the file is empty" in fails(cli, seeded, path)
    path = tmp_path / "array.json"
    path.write_text("[]", "utf-8")
    assert "no records" in fails(cli, seeded, path)
    path = tmp_path / "header.csv"
    path.write_text("instruction,output\n", "utf-8")
    assert "no records" in fails(cli, seeded, path)


def test_xlsx_that_is_not_a_workbook(seeded, cli, tmp_path: Path) -> None:
    path = tmp_path / "fake.xlsx"
    path.write_text("instruction,output\nA,1\n", "utf-8")
    message = fails(cli, seeded, path)
    assert "fake.xlsx" in message and "not an Excel workbook" in message


def test_old_xls(seeded, cli, tmp_path: Path) -> None:
    path = tmp_path / "old.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100)
    assert "save as .xlsx" in fails(cli, seeded, path)


def test_xlsx_with_wrong_headers(seeded, cli, tmp_path: Path) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    wb.active.append(["Question", "Answer"])
    wb.active.append(["Why?", "Because."])
    wb.save(tmp_path / "wrong.xlsx")
    message = fails(cli, seeded, tmp_path / "wrong.xlsx")
    assert "missing required column(s): instruction, output (found: Answer, Question)" in message


def test_xlsx_with_repeated_header(seeded, cli, tmp_path: Path) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    wb.active.append(["instruction", "output", "output"])
    wb.active.append(["A", "1", "2"])
    wb.save(tmp_path / "twice.xlsx")
    message = fails(cli, seeded, tmp_path / "twice.xlsx")
    assert "column 'output' appears twice" in message and "row 1" in message


def test_path_that_does_not_exist(seeded, cli, tmp_path: Path) -> None:
    message = fails(cli, seeded, tmp_path / "nope.jsonl")
    assert "nope.jsonl" in message and "no such file" in message


def test_folder_that_is_not_a_hf_dataset(seeded, cli, tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "x.txt").write_text("hi", "utf-8")
    message = fails(cli, seeded, folder)
    assert "not a Hugging Face dataset folder" in message
    assert "not a Hugging Face dataset folder" in fails(cli, seeded, folder, "--format", "hf")


def test_duplicate_explicit_ids(seeded, cli, tmp_path: Path) -> None:
    path = tmp_path / "ids.csv"
    path.write_text("id,instruction,output\nx,A,1\ny,B,2\nx,C,3\n", "utf-8")
    message = fails(cli, seeded, path)
    assert "id 'x' appears twice: row 2 and row 4" in message


def test_unknown_format(seeded, cli, tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text('{"instruction": "A", "output": "1"}\n', "utf-8")
    assert "unknown format 'yaml'" in fails(cli, seeded, path, "--format", "yaml")


def test_bad_sharegpt_speaker(seeded, cli, tmp_path: Path) -> None:
    path = tmp_path / "sg.jsonl"
    row = {"conversations": [{"from": "human", "value": "Hi"}, {"from": "robot", "value": "Yo"}]}
    path.write_text(json.dumps(row) + "\n", "utf-8")
    message = fails(cli, seeded, path)
    assert "field 'conversations[1].from'" in message and "unknown speaker 'robot'" in message


def test_field_above_the_limit(seeded, cli, tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_text("instruction,output\nA,1\nB," + "x" * 2001 + "\n", "utf-8")
    message = fails(cli, seeded, path, "--max-field-chars", "2000")
    assert "row 3, field 'output'" in message and "2,001 characters" in message


def test_50_mb_field_is_refused_quickly_and_lean(tmp_path: Path) -> None:
    """Reading such a file takes well under a few seconds and a small multiple of its size."""
    path = tmp_path / "huge.jsonl"
    with path.open("w", encoding="utf-8") as f:
        f.write('{"instruction": "A", "output": "1"}\n')
        f.write('{"instruction": "B", "output": "' + "y" * 50_000_000 + '"}\n')
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(BonsaiError) as info:
            read_records(path)
        seconds = time.perf_counter() - started
        peak_mb = tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()
    message = str(info.value)
    assert "line 2, field 'output'" in message and "50,000,000 characters" in message
    assert "limit of 1,000,000" in message
    assert seconds < 5, seconds
    assert peak_mb < 200, peak_mb  # a 50 MB file: its text, one line, one parsed value


def test_library_raises_bonsai_error(tmp_path: Path) -> None:
    with pytest.raises(BonsaiError) as info:
        read_records(tmp_path / "missing.json")
    assert info.value.file == tmp_path / "missing.json"


def test_bad_dataset_name(garden, cli, tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text('{"instruction": "A", "output": "1"}\n', "utf-8")
    result = cli("data", "import", path, "-d", " spaced ", "--garden", garden.root)
    assert result.exit_code == 2 and "invalid dataset name" in result.stderr
