"""The run registry: manifests read through :class:`RunManifest`, old run folders included."""

from __future__ import annotations

import json

from bonsai import runs
from bonsai.evaluate.runinfo import load_run as eval_load_run
from bonsai.garden import Garden
from bonsai.generate.loading import choose_run
from bonsai.runs import RunManifest

# A manifest as an early version wrote it: the base model as a plain name, the validation ids at
# the top, no shard, no timestamps, and a key this version does not know.
OLD_MANIFEST = {
    "id": "20250101-120000-cats",
    "dataset": "cats",
    "layout": "bonsai",
    "base_model": "embedded:gemma-3-270m",
    "status": "finished",
    "val_ids": ["r1", "r2"],
    "args": {"lora_rank": 8},
    "result": {"val_loss": 1.5},
}


def test_an_old_manifest_still_loads(garden: Garden) -> None:
    folder = garden.runs_dir / OLD_MANIFEST["id"]
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps(OLD_MANIFEST), encoding="utf-8")
    (folder / "adapter").mkdir()
    (folder / "adapter" / "adapter_config.json").write_text("{}", encoding="utf-8")

    run = runs.load_run(garden, "2025")
    m = run.manifest
    assert (run.id, run.status, run.dataset, run.parent) == (
        OLD_MANIFEST["id"],
        "finished",
        "cats",
        None,
    )
    assert m.base_model_name == "embedded:gemma-3-270m" and m.layout == "bonsai"
    assert m.val_ids == ["r1", "r2"] and m.shard is None and m.created_at == 0.0
    assert m.extra == {"val_ids": ["r1", "r2"], "result": {"val_loss": 1.5}}

    # The stages that read runs see the same.
    info = eval_load_run(garden, OLD_MANIFEST["id"])
    assert info.base_model == "embedded:gemma-3-270m" and info.layout == "bonsai"
    choice = choose_run(garden, OLD_MANIFEST["id"].split("-")[0])
    assert choice.base_model == "embedded:gemma-3-270m" and choice.layout == "bonsai"

    # Saving it again keeps what this version does not know.
    runs.promote(garden, run)
    runs.save_manifest(garden, run)
    saved = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert saved["result"] == {"val_loss": 1.5} and saved["val_ids"] == ["r1", "r2"]
    assert saved["base_model"] == {"name": "embedded:gemma-3-270m"}
    assert runs.promoted_run(garden) is not None


def test_a_manifest_round_trips() -> None:
    manifest = RunManifest(
        id="r",
        dataset="cats",
        shard=2,
        parent="p",
        layout="alpaca",
        base_model={"name": "tiny", "resolved": "/models/tiny"},
        args={"lora_rank": 4},
        data={"hash": "abc", "val_ids": ["a"]},
        summary={"steps": 3},
        created_at=12.5,
        extra={"nursery": {"shard": "A"}},
    )
    again = RunManifest.from_dict(json.loads(json.dumps(manifest.to_dict())))
    assert again == manifest
    assert again.val_ids == ["a"] and again.base_model_name == "tiny"


def test_a_new_run_is_written_through_the_type(garden: Garden) -> None:
    run = runs.create_run(garden, RunManifest(dataset="cats", layout="alpaca"))
    assert run.status == "running" and run.manifest.pid and run.manifest.created_at > 0
    runs.set_status(garden, run, "failed", error="boom")
    again = runs.load_run(garden, run.id)
    assert again.status == "failed" and again.manifest.error == "boom"
    runs.set_status(garden, again, "running")
    assert runs.load_run(garden, run.id).manifest.error is None
