"""The whole editing loop through the CLI: export to Excel, edit one cell, import, undo."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import shared_data

from bonsai.garden import Garden
from bonsai.store import RecordStore


def report_counts(stdout: str) -> dict[str, str]:
    return {
        line.split()[0]: line.split()[-1]
        for line in stdout.splitlines()
        if line.split() and line.split()[0] in ("added", "changed", "unchanged", "absent")
    }


def test_edit_one_cell_in_excel_then_reimport_and_undo(tmp_path: Path, cli) -> None:
    from openpyxl import load_workbook

    root = tmp_path / "garden"
    assert cli("init", root).exit_code == 0
    dolly = shared_data("dolly/dolly-sample.jsonl")
    alpaca = shared_data("gpteacher/toolformer-similarity-0.6-dataset.json")
    for path in (dolly, alpaca):
        result = cli("data", "import", path, "--dataset", "mine", "--garden", root)
        assert result.exit_code == 0, result.output
    total = 403 + 2396

    xlsx = tmp_path / "mine.xlsx"
    result = cli("data", "export", "--dataset", "mine", "--format", "xlsx", "--out", xlsx,
                 "--garden", root)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"Exported {total:,} records" in result.stdout

    # Edit ONE cell (the output of the 5th record), the way a person would, and save.
    wb = load_workbook(xlsx)
    ws = wb["records"]
    header = [c.value for c in ws[1]]
    record_id = ws.cell(row=6, column=header.index("id") + 1).value
    output_cell = ws.cell(row=6, column=header.index("output") + 1)
    original_output = output_cell.value
    output_cell.value = "An edited answer, 編集済み."
    wb.save(xlsx)

    result = cli("data", "import", xlsx, "--dataset", "mine", "--garden", root)
    assert result.exit_code == 0, result.output
    counts = report_counts(result.stdout)
    assert counts == {"added": "0", "changed": "1", "unchanged": f"{total - 1:,}", "absent": "0"}
    assert f"{record_id}: output" in result.stdout

    store = RecordStore(Garden.open(root).db)
    assert store.count("mine") == total  # nothing lost, nothing duplicated
    assert store.get("mine", record_id).output == "An edited answer, 編集済み."

    result = cli("data", "history", "--dataset", "mine", "--json", "--garden", root)
    assert result.exit_code == 0, result.output
    history = json.loads(result.stdout)
    assert [h["kind"] for h in history] == ["import", "import", "import"]
    last = history[-1]
    assert "mine.xlsx" in last["description"] and last["records"] == 1
    assert last["summary"]["changed"] == 1 and last["undone_by"] is None
    table = cli("data", "history", "--dataset", "mine", "--garden", root).stdout
    assert "mine.xlsx" in table and "changed 1" in table

    result = cli("data", "undo", "--dataset", "mine", "--garden", root)
    assert result.exit_code == 0, result.output
    assert f"Undid change #{last['id']}" in result.stdout
    store = RecordStore(Garden.open(root).db)
    assert store.get("mine", record_id).output == original_output
    assert store.count("mine") == total


def test_openpyxl_resave_keeps_every_tricky_value(tmp_path: Path, cli) -> None:
    """A workbook opened and saved again (as an editor does) still imports unchanged."""
    from openpyxl import load_workbook

    root = tmp_path / "garden"
    cli("init", root)
    rows = [
        {"id": "a", "instruction": "=SUM(A1:A2)", "input": "", "output": "line\r\nnext"},
        {"id": "b", "instruction": "007", "input": "  pad  ", "output": "bell\x07 _x000D_"},
        {"id": "c", "instruction": "日本語", "input": "@x", "output": "1e5", "note": "-1"},
    ]
    source = tmp_path / "rows.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    assert cli("data", "import", source, "-d", "t", "-g", root).exit_code == 0
    xlsx = tmp_path / "t.xlsx"
    assert cli("data", "export", "-d", "t", "-o", xlsx, "-g", root).exit_code == 0
    wb = load_workbook(xlsx)
    wb.save(xlsx)
    result = cli("data", "import", xlsx, "-d", "t", "-g", root)
    assert result.exit_code == 0, result.output
    assert report_counts(result.stdout)["unchanged"] == "3"
    assert "Nothing changed." in result.stdout
