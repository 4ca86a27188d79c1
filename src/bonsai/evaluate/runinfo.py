"""What evaluation needs to know about a training run, read from its folder.

A run lives in ``<garden>/runs/<run-id>/`` with ``manifest.json`` (base model, layout, parent run,
dataset, …), ``adapter/`` and ``metrics.jsonl``, as the train stage writes them
(:mod:`bonsai.runs` finds and reads them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bonsai.errors import BonsaiError
from bonsai.garden import Garden
from bonsai.runs import RunManifest


@dataclass
class RunInfo:
    id: str
    folder: Path
    base_model: str
    layout: str
    dataset: str | None
    parent: str | None
    manifest: RunManifest = field(default_factory=RunManifest)
    adapter: Path | None = None
    """The final adapter, else the latest checkpoint's (an interrupted run)."""

    @property
    def adapter_dir(self) -> Path:
        return self.adapter or self.folder / "adapter"

    @property
    def metrics_path(self) -> Path:
        return self.folder / "metrics.jsonl"

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "folder": str(self.folder),
            "base_model": self.base_model,
            "layout": self.layout,
            "dataset": self.dataset,
            "parent": self.parent,
        }


def load_run(garden: Garden, run_id: str) -> RunInfo:
    """The run named ``run_id`` (an id, a unique start of one, or 'latest'), as the train stage
    lists it. A clear error names the runs there are."""
    from bonsai import runs

    try:
        run = runs.load_run(garden, run_id)
    except BonsaiError as exc:
        known = [r.id for r in runs.list_runs(garden)]
        if known:
            exc.hint = f"runs: {', '.join(known[-8:])}"
        exc.file = exc.file or garden.runs_dir
        raise
    manifest = run.manifest
    path = run.manifest_path
    base_model = manifest.base_model_name
    if not base_model:
        raise BonsaiError("the run's manifest names no base model", file=path, field="base_model")
    try:
        adapter = run.final_adapter()
    except BonsaiError:
        adapter = run.adapter_dir
    parent = manifest.parent
    return RunInfo(
        id=run.id,
        folder=run.dir,
        base_model=base_model,
        layout=manifest.layout or "alpaca",
        dataset=manifest.dataset or None,
        parent=str(parent) if parent else None,
        manifest=manifest,
        adapter=adapter,
    )
