"""Bad input to `bonsai eval`: one clear line, exit 2, nothing written. All checked before any
model loads, so these run in a blink (the fake runs have no model at all)."""

from __future__ import annotations

import json
from pathlib import Path

from eval_support import add_records, fake_run, simple_records

from bonsai.garden import Garden


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*"))


def test_missing_run_id_names_the_runs_there_are(garden: Garden, cli) -> None:
    fake_run(garden, "run-a")
    result = cli("eval", "run-zzz", "--garden", garden.root)
    assert result.exit_code == 2
    assert "no run 'run-zzz'" in result.stderr and "run-a" in result.stderr
    assert "Traceback" not in result.output


def test_no_run_at_all(garden: Garden, cli) -> None:
    result = cli("eval", "latest", "--garden", garden.root)
    assert result.exit_code == 2 and "no runs yet" in result.stderr
    assert cli("eval", "--garden", garden.root).exit_code == 2


def test_run_without_validation_split(garden: Garden, cli) -> None:
    add_records(garden, "cats", simple_records(with_val=False))
    run = fake_run(garden, "run-a")
    before = _files(run)
    result = cli("eval", "run-a", "--garden", garden.root)
    assert result.exit_code == 2
    assert "no validation split" in result.stderr and "bonsai data split" in result.stderr
    assert _files(run) == before


def test_probe_file_with_unknown_category(garden: Garden, cli, tmp_path: Path) -> None:
    add_records(garden, "cats", simple_records())
    run = fake_run(garden, "run-a")
    probes = tmp_path / "probes.jsonl"
    lines = [
        {"instruction": "Capital of Japan?", "output": "Tokyo", "category": "open_qa"},
        {"instruction": "A poem", "output": "…", "category": "poetry"},
    ]
    probes.write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    result = cli("eval", "run-a", "--probes", probes, "--garden", garden.root)
    assert result.exit_code == 2
    assert str(probes) in result.stderr
    assert "line 2" in result.stderr and "field 'category'" in result.stderr
    assert "unknown category 'poetry'" in result.stderr
    assert _files(run) == ["manifest.json"]


def test_report_folder_that_cannot_be_written(garden: Garden, cli, tmp_path: Path) -> None:
    add_records(garden, "cats", simple_records())
    run = fake_run(garden, "run-a")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    result = cli("eval", "run-a", "--out", blocker / "reports", "--garden", garden.root)
    assert result.exit_code == 2
    assert "cannot write the report" in result.stderr and "not-a-folder" in result.stderr
    assert _files(run) == ["manifest.json"]
    assert blocker.read_text() == "x"


def test_against_a_run_of_another_base_model(garden: Garden, cli) -> None:
    add_records(garden, "cats", simple_records())
    fake_run(garden, "run-a")
    fake_run(garden, "run-b", base_model="other")
    result = cli("eval", "run-a", "--against", "run-b", "--garden", garden.root)
    assert result.exit_code == 2 and "same base model" in result.stderr


def test_bad_flags(garden: Garden, cli) -> None:
    fake_run(garden, "run-a")
    assert "1 or more" in cli("eval", "run-a", "--max-new-tokens", "0", "-g", garden.root).stderr
    assert "with itself" in cli("eval", "run-a", "--against", "run-a", "-g", garden.root).stderr
    result = cli("eval", "--ablation", "-g", garden.root)
    assert result.exit_code == 2 and "--dataset" in result.stderr
    result = cli("eval", "run-a", "--ablation", "--dataset", "cats", "-g", garden.root)
    assert result.exit_code == 2 and "not a run id" in result.stderr


def test_run_without_an_adapter(garden: Garden, cli) -> None:
    add_records(garden, "cats", simple_records())
    run = fake_run(garden, "run-a", status="interrupted")
    result = cli("eval", "run-a", "--garden", garden.root)
    assert result.exit_code == 2
    assert "has no adapter yet" in result.stderr and "--resume" in result.stderr
    assert _files(run) == ["manifest.json"]
