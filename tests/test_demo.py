"""`bonsai demo`: the whole loop in one go. The default tier runs it with a tiny model and tiny
budgets in a temp folder; the slow tier runs `bonsai demo --quick` for real."""

from __future__ import annotations

import io
import json
import sqlite3
import time
from pathlib import Path

import pytest
from rich.console import Console

from bonsai.demo import MARKER, Budget, DemoArgs, prepare_garden, run_demo
from bonsai.errors import BonsaiError
from bonsai.sample import PLANTED_CONTRADICTION_IDS

TINY_BUDGET = Budget(
    max_steps=2, epochs=None, eval_items=4, eval_probes=2, max_new_tokens=6, losses=True
)


def _quiet() -> Console:
    return Console(file=io.StringIO(), width=120)


@pytest.fixture
def one_thread():
    """Tiny models run fastest on one thread, above all on a busy shared machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_demo_runs_the_whole_loop_with_a_tiny_model(
    tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, one_thread
) -> None:
    monkeypatch.setenv("BONSAI_EMBED_MODEL", "hashing-256")  # no encoder weights to load
    console = _quiet()
    args = DemoArgs(
        garden=tmp_path / "demo",
        base_model=str(tiny_model_dir),
        budget=TINY_BUDGET,
        threads=1,
    )
    result = run_demo(args, console)
    out = console.file.getvalue()

    root = tmp_path / "demo"
    assert result.garden == root.resolve() and (root / MARKER).is_file()
    # The check showed the planted contradiction.
    assert sorted(PLANTED_CONTRADICTION_IDS) in [sorted(ids) for ids in result.contradictions]
    assert "cat-0141" in out and "contradiction" in out
    # The run folder: adapter, manifest, metrics, and the report pair beside them.
    run_dir = root / "runs" / result.run_id
    assert (run_dir / "adapter" / "adapter_config.json").is_file()
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["status"] == "finished" and manifest["layout"] == "bonsai-multitask"
    assert result.report.parent == run_dir and result.report.name.startswith("report-")
    assert result.report.suffix == ".html" and result.report_json.suffix == ".json"
    html = result.report.read_text(encoding="utf-8")
    assert "Per category: tuned vs base" in html and "data:image/png;base64," in html
    report = json.loads(result.report_json.read_text(encoding="utf-8"))
    assert [m["key"] for m in report["models"]] == ["tuned", "base"]
    assert report["counts"] == {"val": 4, "probe": 2}
    assert report["run"]["id"] == result.run_id
    # The database: records split and taught, the run indexed, the evaluation and notes stored.
    db = sqlite3.connect(root / "garden.db")
    try:
        assert db.execute("SELECT COUNT(*) FROM records").fetchone()[0] == 230
        assert db.execute("SELECT COUNT(*) FROM records WHERE split = 'val'").fetchone()[0] == 23
        missing = "SELECT COUNT(*) FROM records WHERE reasoning IS NULL OR reasoning = ''"
        assert db.execute(missing).fetchone()[0] == 0
        runs = db.execute("SELECT id, status FROM training_runs").fetchall()
        assert runs == [(result.run_id, "finished")]
        evaluations = db.execute("SELECT run_id, kind, report FROM evaluations").fetchall()
        assert evaluations == [(result.run_id, "evaluation", str(result.report))]
        assert db.execute("SELECT COUNT(*) FROM knowledge_documents").fetchone()[0] == 5
    finally:
        db.close()
    # What to do next is printed.
    assert f"bonsai chat --garden {root.resolve()}" in out
    assert set(result.timings) >= {"import", "check", "train", "evaluate", "total"}


def test_demo_refuses_a_folder_that_is_not_a_demo_garden(tmp_path: Path, cli) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    result = cli("demo", "--garden", folder)
    assert result.exit_code == 2
    assert "not a demo garden" in result.stderr and str(folder) in result.stderr
    assert (folder / "notes.txt").read_text() == "keep me"
    plain_file = tmp_path / "file"
    plain_file.write_text("x")
    with pytest.raises(BonsaiError):
        prepare_garden(plain_file, _quiet())


def test_rerunning_recreates_a_demo_garden(tmp_path: Path) -> None:
    first = prepare_garden(tmp_path / "demo", _quiet())
    (first.root / "left-over.txt").write_text("from the first demo")
    first.close()
    second = prepare_garden(tmp_path / "demo", _quiet())
    try:
        assert not (second.root / "left-over.txt").exists()
        assert (second.root / MARKER).is_file() and (second.root / "bonsai.toml").is_file()
    finally:
        second.close()
    empty = tmp_path / "empty"
    empty.mkdir()
    prepare_garden(empty, _quiet()).close()  # an empty folder is fine too


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_demo_quick_for_real(tmp_path: Path, cli) -> None:
    """The real embedded model, the real budget: `bonsai demo --quick` from nothing."""
    started = time.perf_counter()
    result = cli("demo", "--quick", "--garden", tmp_path / "demo")
    seconds = time.perf_counter() - started
    assert result.exit_code == 0, result.output
    reports = list((tmp_path / "demo" / "runs").glob("*/report-*.html"))
    assert len(reports) == 1 and reports[0].with_suffix(".json").is_file()
    print(f"bonsai demo --quick took {seconds:.0f} s")
    assert "Demo finished" in result.stdout
