"""Reading every import format into records: field mapping, ids, categories, extra columns."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from conftest import shared_data

from bonsai.curate.importer import import_file, read_records, read_source
from bonsai.errors import BonsaiError
from bonsai.records import CATEGORIES, content_id
from bonsai.store import RecordStore


def write_jsonl(path: Path, objects: list[dict]) -> Path:
    path.write_text("".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objects), "utf-8")
    return path


def test_alpaca_json_array(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    data = [
        {"instruction": "猫の名前は？", "input": "", "output": "タマ", "note": {"k": [1, 2]}},
        {"instruction": "Add", "input": "1+1", "output": "2"},
    ]
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2), "utf-8")
    source = read_source(path)
    assert source.format == "alpaca"
    first, second = (item.record for item in source.incoming)
    assert first.instruction == "猫の名前は？" and first.output == "タマ"
    assert first.extra == {"note": {"k": [1, 2]}}
    assert first.id == content_id("猫の名前は？", "", "タマ")
    assert second.input == "1+1" and second.category is None
    lines = path.read_text("utf-8").splitlines()
    second_start = lines.index('    "instruction": "Add",')  # 0-based index of the line after "{"
    assert [item.source.line for item in source.incoming] == [2, second_start]


def test_dolly_sample_maps_fields_and_categories() -> None:
    path = shared_data("dolly/dolly-sample.jsonl")
    source = read_source(path)
    assert source.format == "dolly"
    records = [item.record for item in source.incoming]
    assert len(records) == 403
    assert {r.category for r in records} <= set(CATEGORIES)
    assert all(r.category_source == "human" for r in records)
    by_source = {r.source_category: r.category for r in records}
    assert by_source["general_qa"] == "open_qa"
    assert by_source["creative_writing"] == "creative"
    assert by_source["information_extraction"] == "closed_qa"
    assert by_source["summarization"] == "closed_qa"
    assert sum(1 for r in records if r.input) == 123  # context → input
    first = json.loads(path.read_text("utf-8").splitlines()[0])
    assert records[0].input == first["context"] and records[0].output == first["response"]
    assert len({r.id for r in records}) == 403


def test_jsonl_detects_dolly_keys_per_file(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "d.jsonl",
        [{"instruction": "Q", "context": "C", "response": "R", "category": "general_qa"}],
    )
    (record,) = read_records(path)
    assert (record.input, record.output, record.category) == ("C", "R", "open_qa")
    # The same keys under --format jsonl are still understood as Dolly's.
    assert read_records(path, fmt="jsonl")[0].output == "R"


def test_self_instruct_seed_tasks() -> None:
    path = shared_data("alpaca-seed/seed_tasks_jp_cleaned.jsonl")
    source = read_source(path)
    assert source.format == "self-instruct"
    records = [item.record for item in source.incoming]
    assert len(records) == 175
    assert records[0].id == "seed_task_0"
    assert records[0].extra == {"name": "breakfast_suggestion", "is_classification": False}
    assert "卵" in records[0].instruction


def test_self_instruct_several_instances_get_suffixes(tmp_path: Path) -> None:
    task = {
        "id": "t1",
        "name": "sum",
        "instruction": "Add the numbers.",
        "instances": [{"input": "1 2", "output": "3"}, {"input": "2 2", "output": "4"}],
        "is_classification": False,
    }
    records = read_records(write_jsonl(tmp_path / "s.jsonl", [task]))
    assert [r.id for r in records] == ["t1-1", "t1-2"]
    assert [r.output for r in records] == ["3", "4"]


def test_sharegpt_multi_turn_and_system(tmp_path: Path) -> None:
    conversation = {
        "id": "c1",
        "conversations": [
            {"from": "system", "value": "Be brief."},
            {"from": "human", "value": "What is a bonsai?"},
            {"from": "gpt", "value": "A small tree in a pot."},
            {"from": "human", "value": "How old can it get?"},
            {"from": "gpt", "value": "Hundreds of years."},
        ],
        "category": "open_qa",
    }
    path = tmp_path / "sg.json"
    path.write_text(json.dumps([conversation]), "utf-8")
    source = read_source(path)
    assert source.format == "sharegpt"
    first, second = (item.record for item in source.incoming)
    assert (first.id, second.id) == ("c1-1", "c1-2")
    assert first.instruction == "What is a bonsai?" and first.input == ""
    assert second.instruction == "How old can it get?"
    assert second.input == "User: What is a bonsai?\n\nAssistant: A small tree in a pot."
    assert second.output == "Hundreds of years."
    assert first.extra == {"system": "Be brief."} and second.category == "open_qa"


def test_openai_messages_and_unanswered_turn(tmp_path: Path) -> None:
    row = {
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": [{"type": "text", "text": "Hello!"}]},
            {"role": "user", "content": "Still there?"},
        ]
    }
    source = read_source(write_jsonl(tmp_path / "m.jsonl", [row]))
    (item,) = source.incoming
    assert (item.record.instruction, item.record.output) == ("Hi", "Hello!")
    assert item.record.id == content_id("Hi", "", "Hello!")
    assert any("no answer" in note for note in source.notes)


def test_csv_with_bom_and_mapping(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["prompt", "answer", "category", "language", "source"])
        writer.writerow(["Translate 猫", "cat", "translation", "ja-en", "notes"])
        writer.writerow(["Name a fish", "tope", "", "", ""])
    mapping = {"prompt": "instruction", "answer": "output"}
    first, second = read_records(path, mapping=mapping)
    assert first.instruction == "Translate 猫" and first.output == "cat"
    assert (first.category, first.category_source) == ("translation", "human")
    assert (first.language, first.language_source) == ("ja-en", "human")
    assert first.extra == {"source": "notes"}
    assert second.category is None and second.language is None and second.extra == {}
    assert second.input == ""


def test_semicolon_csv(tmp_path: Path) -> None:
    path = tmp_path / "eu.csv"
    path.write_text("instruction;output\nA, B;C\n", "utf-8")
    (record,) = read_records(path)
    assert (record.instruction, record.output) == ("A, B", "C")


def test_xlsx_written_by_openpyxl(tmp_path: Path) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["id", "instruction", "input", "output", "category", "rating"])
    ws.append(["a1", "Say hi", None, "hi", "creative", 5])
    ws.append([None, None, None, None, None, None])  # blank rows are skipped
    ws.append([7, "Count", "", 3, "brainstorming", None])
    wb.save(tmp_path / "x.xlsx")
    source = read_source(tmp_path / "x.xlsx")
    first, second = (item.record for item in source.incoming)
    assert (first.id, first.input, first.extra) == ("a1", "", {"rating": 5})
    assert (second.id, second.output) == ("7", "3")
    assert [item.source.row for item in source.incoming] == [2, 4]


def test_parquet(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"instruction": ["A", "B"], "output": ["1", "2"], "score": [0.5, None]})
    pq.write_table(table, tmp_path / "p.parquet")
    first, second = read_records(tmp_path / "p.parquet")
    assert (first.instruction, first.output, first.extra) == ("A", "1", {"score": 0.5})
    assert second.extra == {}


def test_hf_dataset_and_dataset_dict(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    rows = {"instruction": ["A", "B"], "output": ["1", "2"]}
    datasets.Dataset.from_dict(rows).save_to_disk(str(tmp_path / "one"))
    assert [r.instruction for r in read_records(tmp_path / "one")] == ["A", "B"]

    dd = datasets.DatasetDict(
        train=datasets.Dataset.from_dict(rows),
        test=datasets.Dataset.from_dict({"instruction": ["T"], "output": ["t"]}),
    )
    dd.save_to_disk(str(tmp_path / "dict"))
    source = read_source(tmp_path / "dict")
    assert [i.record.instruction for i in source.incoming] == ["A", "B"]
    assert any("split 'train'" in note for note in source.notes)
    assert [r.instruction for r in read_records(tmp_path / "dict", split="test")] == ["T"]
    with pytest.raises(BonsaiError, match="no split 'dev'"):
        read_records(tmp_path / "dict", split="dev")


def test_gpteacher_irregular_key_goes_to_extra() -> None:
    records = read_records(shared_data("gpteacher/toolformer-similarity-0.6-dataset.json"))
    assert len(records) == 2396
    assert [r.extra for r in records if r.extra] == [
        {"example_input": records[1486].extra["example_input"]}
    ]


def test_exact_duplicates_get_suffixes(tmp_path: Path) -> None:
    row = {"instruction": "Same", "output": "same"}
    records = read_records(write_jsonl(tmp_path / "dup.jsonl", [row, row, row]))
    base = content_id("Same", "", "same")
    assert [r.id for r in records] == [base, f"{base}-2", f"{base}-3"]


def test_format_override_and_unknown_extension(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "data.txt", [{"instruction": "I", "output": "O"}])
    assert read_records(path)[0].instruction == "I"  # sniffed from the content
    assert read_records(path, fmt="jsonl")[0].output == "O"


def test_import_file_into_garden(garden) -> None:
    report = import_file(garden, shared_data("dolly/dolly-sample.jsonl"), "cats")
    assert (report.added, report.changed, report.unchanged) == (403, 0, 0)
    store = RecordStore(garden.db)
    assert store.count("cats") == 403
    (change,) = store.history("cats")
    assert change.kind == "import" and change.records == 403
    assert change.summary["added"] == 403


def test_dates_and_decimals_become_text(garden, tmp_path: Path) -> None:
    import datetime as dt
    from decimal import Decimal

    import pyarrow as pa
    import pyarrow.parquet as pq
    from openpyxl import Workbook

    wb = Workbook()
    wb.active.append(["instruction", "output", "asked_on"])
    wb.active.append(["When?", "Today", dt.datetime(2024, 5, 1, 9, 30)])
    wb.save(tmp_path / "d.xlsx")
    import_file(garden, tmp_path / "d.xlsx", "x")
    (record,) = RecordStore(garden.db).records("x")
    assert record.extra == {"asked_on": "2024-05-01T09:30:00"}

    table = pa.table({"instruction": ["Cost?"], "output": ["Cheap"], "price": [Decimal("1.50")]})
    pq.write_table(table, tmp_path / "p.parquet")
    import_file(garden, tmp_path / "p.parquet", "y")
    assert RecordStore(garden.db).records("y")[0].extra == {"price": "1.50"}
