"""Export: every format's columns, exact round trips through Excel, CSV and Parquet."""

from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path

import pytest

from bonsai.curate.exporter import export_dataset, write_records
from bonsai.curate.importer import import_file, read_records
from bonsai.errors import BonsaiError
from bonsai.records import CATEGORIES, EDITABLE_FIELDS, Record
from bonsai.store import Change, RecordStore

TRICKY = [
    "猫は魚が好きです。\n日本語の改行",
    "中文文本，带标点。",
    "Windows line\r\nends\r\n",
    "\"double\" and 'single' quotes",
    "  leading and trailing spaces  ",
    "=1+2",
    '=HYPERLINK("http://example.com","x")',
    "+81 3 1234",
    "-minus first",
    "@mention",
    "007",
    "1e5",
    "TRUE",
    "0.10",
    "tab\there and a bell\x07",
    "literal _x000D_ in text",
    "_x005F_x0041_",
    "_x005F_",
    "_x_x0041__x",
    "\t=tab first",
    "\r=CR first",
    "'=already quoted",
    "''+twice",
    "'plain apostrophe",
    "<tag> & ampersand",
    "emoji 🌳 and café",
    "\n",
    "   ",
]


def tricky_objects() -> list[dict]:
    objects = []
    for index, text in enumerate(TRICKY):
        objects.append(
            {
                "id": f"t{index:02d}",
                "instruction": text if text.strip() else f"blank-ish {index}",
                "input": text if index % 2 else "",
                "output": text if text.strip() else f"blank-ish {index}",
                "category": CATEGORIES[index % len(CATEGORIES)],
                "language": "ja" if index % 3 == 0 else None,
                "reasoning": text if index % 4 == 0 else None,
                "note": text,
            }
        )
    objects.append({"id": "long", "instruction": "Long", "input": "", "output": "x" * 32_767})
    return objects


@pytest.fixture
def tricky(garden, tmp_path: Path):
    path = tmp_path / "tricky.json"
    path.write_text(json.dumps(tricky_objects(), ensure_ascii=False), "utf-8")
    import_file(garden, path, "t")
    return garden


def comparable(record: Record) -> dict:
    return {"id": record.id, **record.editable(), "extra": record.extra}


@pytest.mark.parametrize("fmt", ["xlsx", "csv", "parquet", "jsonl", "alpaca"])
def test_round_trip_is_exact(tricky, tmp_path: Path, fmt: str) -> None:
    original = RecordStore(tricky.db).records("t")
    out = export_dataset(tricky, "t", fmt, tmp_path / f"t.{fmt}")
    back = read_records(out)
    assert [comparable(r) for r in back] == [comparable(r) for r in original]
    # And importing the export into the same dataset changes nothing.
    report = import_file(tricky, out, "t")
    assert (report.added, report.changed, report.unchanged) == (0, 0, len(original))


def test_json_to_xlsx_to_json_returns_every_field(tricky, tmp_path: Path) -> None:
    xlsx = export_dataset(tricky, "t", "xlsx", tmp_path / "t.xlsx")
    import_file(tricky, xlsx, "back")
    json_out = export_dataset(tricky, "back", "alpaca", tmp_path / "back.json")
    objects = json.loads(json_out.read_text("utf-8"))
    expected = tricky_objects()
    assert len(objects) == len(expected)
    for got, want in zip(objects, expected, strict=True):
        for key, value in want.items():
            assert got[key] == value, (want["id"], key)
        assert isinstance(got["input"], str)  # an empty cell comes back as "", never None


def test_xlsx_is_pleasant_to_edit(tricky, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    out = export_dataset(tricky, "t", "xlsx", tmp_path / "t.xlsx")
    wb = load_workbook(out)
    ws = wb["records"]
    header = [c.value for c in ws[1]]
    assert header == ["id", *EDITABLE_FIELDS, "note"]
    assert all(c.font.b for c in ws[1])
    assert ws.freeze_panes == "A2"
    assert ws.column_dimensions["B"].width == 50  # instruction
    assert ws["D2"].alignment.wrap_text
    rows = ws.max_row
    assert ws.auto_filter.ref == f"A1:I{rows}"
    (choice,) = ws.data_validations.dataValidation
    assert choice.type == "list" and choice.formula1 == '"' + ",".join(CATEGORIES) + '"'
    assert str(choice.sqref).startswith("E2:E")
    # Formula-looking texts are text cells, never formulas.
    texts = {c.value: c.data_type for row in ws.iter_rows(min_row=2) for c in row}
    for value in ("=1+2", "+81 3 1234", "-minus first", "@mention", "007", "1e5"):
        assert texts[value] == "s", value
    sheet_xml = zipfile.ZipFile(out).read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in sheet_xml and "<f " not in sheet_xml
    meta = wb["_bonsai"]
    assert meta.sheet_state == "hidden"
    assert {row[0]: row[1] for row in meta.iter_rows(values_only=True)}["dataset"] == "t"


def test_xlsx_refuses_a_cell_above_excels_limit(tmp_path: Path) -> None:
    record = Record(id="big", instruction="Long", output="y" * 32_768)
    out = tmp_path / "big.xlsx"
    out.write_text("previous", "utf-8")
    with pytest.raises(BonsaiError) as info:
        write_records([record], "xlsx", out)
    message = str(info.value)
    assert "record 'big'" in message and "field 'output'" in message
    assert "32,768 characters" in message and "32,767" in message
    assert out.read_text("utf-8") == "previous"  # nothing half-written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.xlsx"]


def test_typed_extra_values_round_trip_through_xlsx_and_parquet(tmp_path: Path) -> None:
    records = [
        Record(id="a", instruction="A", output="1", extra={"n": 3, "ok": True, "tags": ["x"]}),
        Record(id="b", instruction="B", output="2", extra={"n": 4.5, "ok": False, "tags": "7"}),
    ]
    for fmt in ("xlsx", "parquet"):
        out = write_records(records, fmt, tmp_path / f"e.{fmt}")
        assert [r.extra for r in read_records(out)] == [r.extra for r in records], fmt


def test_dolly_and_sharegpt_shapes(tricky, tmp_path: Path) -> None:
    dolly = export_dataset(tricky, "t", "dolly", tmp_path / "d.jsonl")
    first = json.loads(dolly.read_text("utf-8").splitlines()[0])
    assert list(first) == ["id", "instruction", "context", "response", "category"]
    assert first["response"] == TRICKY[0] and first["category"] == "open_qa"

    share = export_dataset(tricky, "t", "sharegpt", tmp_path / "s.json")
    second = json.loads(share.read_text("utf-8"))[1]
    assert second["id"] == "t01" and second["category"] == "closed_qa"
    assert second["conversations"] == [
        {"from": "human", "value": f"{TRICKY[1]}\n\n{TRICKY[1]}"},  # input joins the user turn
        {"from": "gpt", "value": TRICKY[1]},
    ]
    assert "language" in second and second["note"] == TRICKY[1]
    # Ids survive a ShareGPT round trip.
    assert [r.id for r in read_records(share)] == [
        r.id for r in RecordStore(tricky.db).records("t")
    ]


def test_json_is_utf8_not_escaped(tricky, tmp_path: Path) -> None:
    out = export_dataset(tricky, "t", "jsonl", tmp_path / "t.jsonl")
    text = out.read_text("utf-8")
    assert "猫は魚が好きです" in text and "\\u" not in text.replace("\\u0007", "")
    assert len(text.splitlines()) == len(tricky_objects())
    alpaca = export_dataset(tricky, "t", "alpaca", tmp_path / "t.json")
    assert isinstance(json.loads(alpaca.read_text("utf-8")), list)


def test_csv_has_a_bom_and_a_header(tricky, tmp_path: Path) -> None:
    out = export_dataset(tricky, "t", "csv", tmp_path / "t.csv")
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")
    with out.open(encoding="utf-8-sig", newline="") as f:
        header = next(csv.reader(f))
    assert header == ["id", *EDITABLE_FIELDS, "note"]


def test_split_shard_and_default_out(garden, cli, tmp_path: Path) -> None:
    store = RecordStore(garden.db)
    records = [Record(id=f"r{i}", instruction=f"I{i}", output=f"O{i}") for i in range(4)]
    from bonsai.store import Change

    store.apply("d", [Change(None, r) for r in records], kind="test", description="seed")
    assigned = []
    for i, record in enumerate(records):
        record.split, record.shard = ("val" if i == 3 else "train"), i % 2
        assigned.append(record)
    store.update("d", assigned, kind="split", description="split")

    val = export_dataset(garden, "d", "jsonl", tmp_path / "val.jsonl", split="val")
    assert [json.loads(line)["id"] for line in val.read_text("utf-8").splitlines()] == ["r3"]
    result = cli("data", "export", "-d", "d", "-f", "csv", "--split", "train", "--shard", "0",
                 "-g", garden.root)  # fmt: skip
    assert result.exit_code == 0, result.output
    default = garden.exports_dir / "d-train-shard0.csv"
    assert "Exported 2 records" in result.stdout and default.is_file()
    assert [r.id for r in read_records(default)] == ["r0", "r2"]

    result = cli("data", "export", "-d", "d", "-o", tmp_path / "x.xlsx", "-g", garden.root)
    assert result.exit_code == 0 and len(read_records(tmp_path / "x.xlsx")) == 4

    result = cli("data", "export", "-d", "d", "-f", "csv", "--shard", "7", "-g", garden.root)
    assert result.exit_code == 2 and "no records to export" in result.stderr
    result = cli("data", "export", "-d", "nope", "-f", "csv", "-g", garden.root)
    assert result.exit_code == 2 and "no dataset named 'nope'" in result.stderr
    result = cli("data", "export", "-d", "d", "-o", tmp_path / "x.txt", "-g", garden.root)
    assert result.exit_code == 2 and "--format" in result.stderr


def test_csv_export_never_starts_a_cell_with_a_formula(tricky, tmp_path: Path) -> None:
    """Excel runs '=', '+', '-', '@' (and tab/CR) first cells as formulas: each gets a "'"."""
    import csv

    out = export_dataset(tricky, "t", "csv", tmp_path / "t.csv")
    with out.open(encoding="utf-8-sig", newline="") as f:
        cells = [cell for row in csv.reader(f) for cell in row]
    assert '\'=HYPERLINK("http://example.com","x")' in cells and "'=1+2" in cells
    assert "''=already quoted" in cells and "'''+twice" in cells
    assert "'plain apostrophe" in cells
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]


def test_xlsx_keeps_escape_lookalikes_in_column_names(garden, tmp_path: Path) -> None:
    records = [
        Record(id="a", instruction="A", output="1", extra={"x_x0041_y": "v", "t": ["_x0009_"]})
    ]
    RecordStore(garden.db).apply(
        "t", [Change(None, r) for r in records], kind="import", description="t"
    )
    out = export_dataset(garden, "t", "xlsx", tmp_path / "t.xlsx")
    import_file(garden, out, "back")
    assert RecordStore(garden.db).records("back")[0].extra == records[0].extra
