"""`bonsai data check`: the terminal report, --json, exit codes and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bonsai.records import Record
from bonsai.store import Change, RecordStore

REASONING = "You should recall the fact and answer in one sentence."


def put(garden, dataset: str, records: list[Record]) -> None:
    RecordStore(garden.db).apply(
        dataset, [Change(None, r) for r in records], kind="import", description="test records"
    )


def rec(id: str, instruction: str, output: str, **kw) -> Record:
    kw.setdefault("category", "open_qa")
    kw.setdefault("language", "en")
    kw.setdefault("reasoning", REASONING)
    return Record(id=id, instruction=instruction, output=output, **kw)


CLEAN = [
    rec("a", "How old is Mochi?", "Six."),
    rec("b", "もちの病院は？", "さくら動物病院です。", language="ja"),
    rec("c", "麻糬喜欢什么玩具？", "羽毛逗猫棒。", language="zh"),
]


@pytest.fixture
def tiny_garden(garden, tiny_model_dir: Path):
    garden.config.student.base_model = str(tiny_model_dir)
    garden.config.save(garden.config_path)
    return garden


def test_clean_dataset_exits_0(tiny_garden, cli) -> None:
    put(tiny_garden, "cats", CLEAN)
    result = cli("data", "check", "--dataset", "cats", "-g", tiny_garden.root)
    assert result.exit_code == 0, result.output
    assert "Checked 3 records of cats" in result.stdout
    assert "No findings" in result.stdout
    assert "tokens of" in result.stdout  # lengths were checked with the garden's student


def test_info_only_exits_0_and_warnings_exit_1(tiny_garden, cli) -> None:
    put(tiny_garden, "info", [*CLEAN, rec("d", "What colour is Mochi?", "Brown.", reasoning=None)])
    result = cli("data", "check", "-d", "info", "-g", tiny_garden.root)
    assert result.exit_code == 0, result.output
    assert "missing-reasoning" in result.stdout

    put(tiny_garden, "warn", [*CLEAN, rec("d", "What colour is Mochi?", "Brown.", category=None)])
    result = cli("data", "check", "-d", "warn", "-g", tiny_garden.root)
    assert result.exit_code == 1, result.output
    assert "missing-category" in result.stdout and "bonsai data annotate" in result.stdout
    assert "→ exit code 1" in result.stdout


def test_contradiction_report_exits_2(tiny_garden, cli) -> None:
    put(
        tiny_garden,
        "cats",
        [
            *CLEAN,
            rec("w-1", "How much does Mochi weigh?", "About 3.6 kg."),
            rec("w-2", "How much does Mochi weigh?", "4.2 kg at her April check-up."),
        ],
    )
    result = cli("data", "check", "-d", "cats", "-g", tiny_garden.root)
    assert result.exit_code == 2, result.output
    out = result.stdout
    assert "contradiction" in out and "w-1" in out and "w-2" in out
    # Side by side: both answers are shown.
    assert "About 3.6 kg." in out and "4.2 kg at her April check-up." in out
    assert "1 error, 0 warnings, 0 info → exit code 2" in out


def test_json_output_parses_and_matches(tiny_garden, cli) -> None:
    put(
        tiny_garden,
        "cats",
        [
            *CLEAN,
            rec("e-1", "Name the vet.", ""),
            rec("e-2", "Name the vet.", "Dr. Tanaka.", category=None),
            rec("e-3", "Name the vet.", "Dr. Tanaka.", category=None),
        ],
    )
    result = cli("data", "check", "-d", "cats", "--json", "-g", tiny_garden.root)
    assert result.exit_code == 2
    data = json.loads(result.stdout)
    assert data["dataset"] == "cats"
    summary = data["summary"]
    assert summary["records"] == 6 and summary["exit_code"] == 2
    assert summary["tokens_checked"] is True
    pairs = [(f["severity"], f["code"], f["record_ids"]) for f in data["findings"]]
    assert pairs == [
        ("error", "empty-field", ["e-1"]),
        ("warning", "exact-duplicate", ["e-2", "e-3"]),
        ("warning", "missing-category", ["e-2", "e-3"]),
    ]
    assert summary["by_severity"] == {"error": 1, "warning": 2, "info": 0}
    assert sum(v["findings"] for v in summary["by_code"].values()) == len(data["findings"])


def test_limit_truncates_groups(tiny_garden, cli) -> None:
    empty = [rec(f"x-{i}", f"Question {i}?", "") for i in range(14)]
    put(tiny_garden, "many", [*CLEAN, *empty])
    result = cli("data", "check", "-d", "many", "-g", tiny_garden.root)
    assert "… and 4 more" in result.stdout
    assert "x-9:" in result.stdout and "x-10:" not in result.stdout
    result = cli("data", "check", "-d", "many", "--limit", "0", "-g", tiny_garden.root)
    assert "x-13:" in result.stdout and "… and" not in result.stdout


def test_max_tokens_and_no_tokens(tiny_garden, cli) -> None:
    put(tiny_garden, "long", [*CLEAN, rec("long", "Tell me about Mochi.", "Mochi naps. " * 60)])
    result = cli(
        "data", "check", "-d", "long", "--max-tokens", "150", "--json", "-g", tiny_garden.root
    )
    data = json.loads(result.stdout)
    assert [f["record_ids"] for f in data["findings"] if f["code"] == "length-outlier"] == [
        ["long"]
    ]
    assert result.exit_code == 1
    result = cli("data", "check", "-d", "long", "--max-tokens", "150", "--no-tokens", "-g",
                 tiny_garden.root)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "lengths not checked" in result.stdout


def test_unknown_dataset_is_a_clear_error(tiny_garden, cli) -> None:
    put(tiny_garden, "cats", CLEAN)
    result = cli("data", "check", "-d", "dogs", "-g", tiny_garden.root)
    assert result.exit_code == 2
    assert "no dataset named 'dogs'" in result.stderr and "cats" in result.stderr
    assert "Traceback" not in result.output


def test_bad_threshold_is_a_clear_error(tiny_garden, cli) -> None:
    put(tiny_garden, "cats", CLEAN)
    result = cli("data", "check", "-d", "cats", "--near-threshold", "1.5", "-g", tiny_garden.root)
    assert result.exit_code == 2
    assert "--near-threshold must be above 0 and at most 1" in result.stderr
    assert "Traceback" not in result.output


def test_help_documents_exit_codes(cli) -> None:
    result = cli("data", "check", "--help")
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "0 when clean or only info, 1 when there are warnings, 2 when there are errors" in text
