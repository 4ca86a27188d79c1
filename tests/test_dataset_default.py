"""--dataset may be left out: the garden's only dataset, or default_dataset in bonsai.toml."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from grow_support import add_dataset, feedback, turn

from bonsai.records import Record
from bonsai.sample import records_path
from bonsai.store import Change, RecordStore


def _import(cli, garden, tmp_path: Path, dataset: str) -> None:
    path = tmp_path / f"{dataset}.jsonl"
    path.write_text(f'{{"id": "{dataset}-1", "instruction": "Q", "output": "A"}}\n', "utf-8")
    assert cli("data", "import", path, "-d", dataset, "-g", garden.root).exit_code == 0


@pytest.mark.parametrize(
    "command",
    [
        ("data", "show"),
        ("data", "history"),
        ("data", "check", "--no-tokens"),
        ("data", "stats", "--no-tokens"),
        ("data", "export", "-f", "jsonl"),
        ("data", "split", "--shards", "1"),
    ],
)
def test_the_only_dataset_is_the_default(garden, cli, tmp_path: Path, command) -> None:
    _import(cli, garden, tmp_path, "cats")
    result = cli(*command, "-g", garden.root)
    assert result.exit_code in (0, 1), result.output  # check: 1 for warnings
    assert "Traceback" not in result.output


def test_import_into_the_only_dataset(garden, cli, tmp_path: Path) -> None:
    _import(cli, garden, tmp_path, "cats")
    more = tmp_path / "more.jsonl"
    more.write_text('{"id": "m", "instruction": "Q2", "output": "A2"}\n', "utf-8")
    result = cli("data", "import", more, "-g", garden.root)
    assert result.exit_code == 0 and "into dataset cats" in result.stdout
    assert RecordStore(garden.db).count("cats") == 2


def test_several_datasets_ask_which_and_name_them(garden, cli, tmp_path: Path) -> None:
    _import(cli, garden, tmp_path, "cats")
    _import(cli, garden, tmp_path, "dogs")
    result = cli("data", "show", "-g", garden.root)
    assert result.exit_code == 2
    assert "which dataset?" in result.stderr and "cats, dogs" in result.stderr
    assert "default_dataset" in result.stderr


def test_default_dataset_in_bonsai_toml(garden, cli, tmp_path: Path) -> None:
    _import(cli, garden, tmp_path, "cats")
    _import(cli, garden, tmp_path, "dogs")
    config = garden.config_path.read_text("utf-8")
    garden.config_path.write_text('default_dataset = "dogs"\n' + config, "utf-8")
    result = cli("data", "show", "-g", garden.root)
    assert result.exit_code == 0 and "dogs-1" in result.stdout and "cats-1" not in result.stdout


def test_a_new_garden_writes_default_dataset_as_a_comment(garden) -> None:
    assert "# default_dataset =" in garden.config_path.read_text("utf-8")


def test_grow_dry_run_says_it_would_make_a_new_dataset(garden, cli) -> None:
    add_dataset(garden)
    t = turn(garden, "Is a lily safe for cats?", "Yes.")
    feedback(garden, "correction", t, text="No. Lilies are very toxic to cats.")
    result = cli("grow", "--dataset", "nope", "--dry-run", "-g", garden.root)
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "a new dataset: it would be created" in text
    assert "nope" not in RecordStore(garden.db).dataset_names()


def _train_records(count: int = 8) -> list[Record]:
    lines = records_path().read_text(encoding="utf-8").splitlines()
    chosen = [Record(**json.loads(line)) for line in lines]
    return sorted((r for r in chosen if r.language == "en" and r.reasoning), key=lambda r: r.id)[
        :count
    ]


def test_train_uses_the_only_dataset_and_warns_of_check_errors(
    garden, cli, tiny_model_dir: Path
) -> None:
    records = _train_records()
    records[0].output = "\u200b"  # got in before imports refused it
    RecordStore(garden.db).apply(
        "cats", [Change(None, r) for r in records], kind="import", description="test"
    )
    result = cli("train", "--base-model", tiny_model_dir, "--dry-run", "-g", garden.root)
    assert result.exit_code == 0, result.output
    warning = " ".join(result.stderr.split())
    assert "warning:" in warning and "finds 1 error(s) in dataset 'cats'" in warning
    assert records[0].id in warning


@pytest.mark.parametrize("value", ["3", '""', "[1]"])
def test_a_bad_default_dataset_is_named(garden, cli, value: str) -> None:
    config = garden.config_path.read_text("utf-8")
    garden.config_path.write_text(f"default_dataset = {value}\n" + config, "utf-8")
    result = cli("data", "show", "-g", garden.root)
    assert result.exit_code == 2 and "default_dataset" in result.stderr
    assert "Traceback" not in result.output
