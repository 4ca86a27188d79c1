"""Evaluating real (tiny) runs: the ablation trains both layouts on equal budgets; `bonsai eval`
compares a run with another run and the base model, on probes of the user's own too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eval_support import fake_run

from bonsai.curate.importer import import_file
from bonsai.curate.split import SplitArgs, split_dataset
from bonsai.errors import BonsaiError
from bonsai.evaluate.ablation import run_ablation
from bonsai.evaluate.args import AblationArgs, EvalArgs
from bonsai.evaluate.runinfo import load_run
from bonsai.evaluate.runner import _models
from bonsai.garden import Garden
from bonsai.sample import records_path
from bonsai.store import RecordStore
from bonsai.teach.args import TeachArgs
from bonsai.teach.backends import make_teacher
from bonsai.teach.runner import teach


@pytest.fixture(scope="module")
def ablated(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path):
    """A garden with the sample split, and an ablation of alpaca vs bonsai on it (2 steps each)."""
    import torch

    threads = torch.get_num_threads()
    garden = Garden.init(tmp_path_factory.mktemp("ablation") / "garden")
    import_file(garden, records_path(), "cats")
    split_dataset(RecordStore(garden.db), "cats", SplitArgs(val=0.1))
    teach_args = TeachArgs(dataset="cats", only_missing=True)  # the offline template teacher
    teach(garden, teach_args, make_teacher(teach_args, garden.config))
    args = AblationArgs(
        dataset="cats",
        max_steps=2,
        base_model=str(tiny_model_dir),
        threads=1,
        eval=EvalArgs(
            run="(ablation)",
            max_items=4,
            max_probes=2,
            seed_probes=0,
            max_new_tokens=4,
            bootstrap_samples=100,
        ),
    )
    outcome = run_ablation(garden, args)
    yield garden, outcome
    garden.close()
    torch.set_num_threads(threads)


def test_ablation_trains_both_layouts_on_equal_budgets(ablated) -> None:
    garden, outcome = ablated
    results = outcome.results
    assert results["kind"] == "ablation"
    assert [m["key"] for m in results["models"]] == ["bonsai", "alpaca", "base"]
    assert results["primary"] == "bonsai" and results["headline_against"] == "alpaca"
    facts = results["ablation"]
    assert set(facts) == {"alpaca", "bonsai"}
    manifests = {
        layout: json.loads((garden.runs_dir / f["run"] / "manifest.json").read_text("utf-8"))
        for layout, f in facts.items()
    }
    assert manifests["alpaca"]["layout"] == "alpaca" and manifests["bonsai"]["layout"] == "bonsai"
    for key in ("max_steps", "seed", "lr"):
        assert manifests["alpaca"]["args"][key] == manifests["bonsai"]["args"][key], key
    assert manifests["bonsai"]["args"]["max_steps"] == 2
    # Differences per category: bonsai − alpaca, with the same items for both.
    assert set(results["deltas"]) == {"alpaca", "base"}
    assert set(results["deltas"]["alpaca"]) == set(results["summary"]["bonsai"])
    # The report sits in the bonsai run's folder and says what was compared.
    assert outcome.html.parent == garden.runs_dir / facts["bonsai"]["run"]
    assert outcome.html.name.startswith("report-ablation-")
    html = outcome.html.read_text(encoding="utf-8")
    assert "The runs compared (equal budgets)" in html and "alpaca vs bonsai" in html
    row = garden.db.execute("SELECT kind FROM evaluations WHERE report = ?", (str(outcome.html),))
    assert tuple(row.fetchone()) == ("ablation",)


def test_eval_cli_against_another_run_with_own_probes(ablated, cli, tmp_path: Path) -> None:
    garden, outcome = ablated
    runs = outcome.results["ablation"]
    probes = tmp_path / "probes.jsonl"
    mine = [
        {
            "instruction": "What is Mochi's vet called?",
            "output": "Dr. Tanaka",
            "category": "open_qa",
        },
        {"instruction": "猫の名前は？", "output": "もち", "category": "open_qa", "language": "ja"},
    ]
    probes.write_text("\n".join(json.dumps(p, ensure_ascii=False) for p in mine), "utf-8")
    out_dir = tmp_path / "reports"
    result = cli(
        "eval", runs["bonsai"]["run"], "--against", runs["alpaca"]["run"], "--against", "base",
        "--probes", probes, "--no-builtin-probes", "--seed-probes", "0", "--max-items", "2",
        "--max-new-tokens", "4", "--no-losses", "--out", out_dir, "--garden", garden.root,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "per category" in result.stdout and "Report:" in result.stdout
    (html,) = out_dir.glob("report-*.html")
    data = json.loads(html.with_suffix(".json").read_text(encoding="utf-8"))
    assert [m["key"] for m in data["models"]] == ["tuned", runs["alpaca"]["run"], "base"]
    probe_ids = [i["id"] for i in data["items"] if i["source"] == "probe"]
    assert probe_ids == ["probes-1", "probes-2"]
    assert data["val_loss"] == {}  # --no-losses
    assert all(set(i["answers"]) == {"tuned", runs["alpaca"]["run"], "base"} for i in data["items"])


def test_ablation_needs_reasoning_for_every_record(garden: Garden, cli) -> None:
    import_file(garden, records_path(), "cats")
    split_dataset(RecordStore(garden.db), "cats", SplitArgs(val=0.1))
    result = cli("eval", "--ablation", "--dataset", "cats", "--garden", garden.root)
    assert result.exit_code == 2
    assert "23 record(s)" in result.stderr and "bonsai teach" in result.stderr
    assert not list(garden.runs_dir.iterdir())  # nothing trained


def test_default_comparison_is_the_parent_and_the_base(garden: Garden) -> None:
    fake_run(garden, "run-a")
    fake_run(garden, "run-b", parent="run-a")
    fake_run(garden, "run-c")
    child = load_run(garden, "run-b")
    assert [m.key for m in _models(garden, child, [], {})] == ["tuned", "parent", "base"]
    assert [m.key for m in _models(garden, load_run(garden, "run-a"), [], {})] == ["tuned", "base"]
    named = _models(garden, child, ["run-c", "run-a"], {})
    assert [m.key for m in named] == ["tuned", "run-c", "parent"]
    fake_run(garden, "run-d", parent="run-gone")
    orphan = load_run(garden, "run-d")
    assert [m.key for m in _models(garden, orphan, [], {})] == ["tuned", "base"]
    with pytest.raises(BonsaiError, match="no run 'run-gone'"):
        _models(garden, orphan, ["parent"], {})
