"""Runs: one folder per training run, ``runs/<run-id>/`` in the garden, indexed in the database.

The train stage writes runs; generate, evaluate, grow, the web interface and the nursery read
and promote them. This module sits below all of them and imports none.

The folder is the source of truth::

    runs/20250714-101530-cat-care/
        manifest.json     settings (given and derived), data hash, base model, layout, parent,
                          code version, status, summary
        metrics.jsonl     one JSON object per event: train step, validation, epoch start, warning
        adapter/          the final PEFT adapter (PeftModel.from_pretrained loads it)
        checkpoint/       the latest resumable state (adapter, optimizer, scheduler, RNG, step)
        loss.png          train vs validation loss; loss_by_category.png: per category
        train.log         what the run printed

The ``training_runs`` table is an index of the same (status, parent, summary, the promoted run)
so other stages can query runs without reading every folder.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from bonsai.db import transaction
from bonsai.errors import BonsaiError
from bonsai.garden import Garden
from bonsai.util.atomic import atomic_write_json, atomic_write_text
from bonsai.util.process import pid_alive

STATUSES: tuple[str, ...] = ("running", "interrupted", "failed", "finished")
MANIFEST = "manifest.json"
METRICS = "metrics.jsonl"


@dataclass
class RunManifest:
    """What ``manifest.json`` says about a run: its settings, data, lineage and state.

    Read with :meth:`from_dict`, which accepts manifests written by earlier versions (missing
    fields take their defaults, a base model given as a plain name is read as one, and keys this
    version does not know are kept in :attr:`extra` and written back unchanged).
    """

    id: str = ""
    dataset: str = ""
    shard: int | None = None
    """The shard of the dataset the run trained on (None: all of its training records)."""
    status: str = "running"
    parent: str | None = None
    """The run this one continues (its adapter was the starting point)."""
    parent_adapter: str | None = None
    layout: str = ""
    base_model: dict[str, Any] = field(default_factory=dict)
    """``name`` (as given: ``embedded:gemma-3-270m``, a folder, a hub id) and ``resolved``."""
    args: dict[str, Any] = field(default_factory=dict)
    """The train stage's settings (``TrainArgs.to_dict()``)."""
    derived: list[str] = field(default_factory=list)
    """What was derived or inherited, and why."""
    warnings: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    """The data the run saw: hash, split, ``val_ids``, counts."""
    total_steps: int | None = None
    code: dict[str, Any] = field(default_factory=dict)
    """Versions of bonsai, torch, transformers, peft."""
    summary: dict[str, Any] = field(default_factory=dict)
    """Steps, tokens, losses so far (updated as the run goes)."""
    created_at: float = 0.0
    updated_at: float | None = None
    finished_at: float | None = None
    pid: int | None = None
    host: str | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    """Keys this version does not know, kept as they were."""

    @property
    def base_model_name(self) -> str:
        """The base model's name ('' when the manifest names none)."""
        return str(self.base_model.get("name") or self.base_model.get("path") or "")

    @property
    def val_ids(self) -> list[str]:
        """The validation record ids the run held out (older manifests kept them at the top)."""
        return list(self.data.get("val_ids") or self.extra.get("val_ids") or [])

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunManifest:
        known = {f.name for f in fields(cls)} - {"extra"}
        values = {k: v for k, v in data.items() if k in known}
        base = values.get("base_model")
        if base is None:
            values.pop("base_model", None)
        elif not isinstance(base, dict):
            values["base_model"] = {"name": str(base)}
        for name in ("args", "data", "code", "summary"):
            if not isinstance(values.get(name), dict):
                values.pop(name, None)
        for name in ("derived", "warnings"):
            if not isinstance(values.get(name), list):
                values.pop(name, None)
        if "id" in values:
            values["id"] = str(values["id"])
        if values.get("status") is None:
            values.pop("status", None)
        values["created_at"] = float(values.get("created_at") or 0.0)
        return cls(**values, extra={k: v for k, v in data.items() if k not in known})

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        return {**out, **self.extra}


@dataclass
class Run:
    """A run folder and its manifest."""

    dir: Path
    manifest: RunManifest

    @property
    def id(self) -> str:
        return self.manifest.id

    @property
    def status(self) -> str:
        return self.manifest.status

    @property
    def dataset(self) -> str:
        return self.manifest.dataset

    @property
    def parent(self) -> str | None:
        return self.manifest.parent

    @property
    def manifest_path(self) -> Path:
        return self.dir / MANIFEST

    @property
    def metrics_path(self) -> Path:
        return self.dir / METRICS

    @property
    def adapter_dir(self) -> Path:
        return self.dir / "adapter"

    @property
    def checkpoint_dir(self) -> Path:
        return self.dir / "checkpoint"

    @property
    def log_path(self) -> Path:
        return self.dir / "train.log"

    def is_live(self) -> bool:
        """Whether the process that runs it is still alive (on this machine)."""
        if self.status != "running":
            return False
        if self.manifest.host != socket.gethostname():
            return False
        pid = self.manifest.pid
        if not isinstance(pid, int) or pid == os.getpid():
            return False
        return pid_alive(pid)

    def is_unfinished(self) -> bool:
        return self.status != "finished" and not self.is_live()

    def final_adapter(self) -> Path:
        """The adapter to continue from or merge: the final one, else the latest checkpoint's."""
        if (self.adapter_dir / "adapter_config.json").is_file():
            return self.adapter_dir
        candidate = self.checkpoint_dir / "adapter"
        if (candidate / "adapter_config.json").is_file():
            return candidate
        raise BonsaiError(
            f"run '{self.id}' has no adapter yet (it stopped before its first checkpoint)",
            file=self.dir,
        )


def _slug(text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()
    return slug[:40] or "run"


def new_run_id(garden: Garden, dataset: str) -> str:
    """``YYYYmmdd-HHMMSS-<dataset>``, with ``-2``, ``-3``… if that second is taken."""
    base = f"{time.strftime('%Y%m%d-%H%M%S')}-{_slug(dataset)}"
    candidate, n = base, 1
    while (garden.runs_dir / candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def read_manifest(folder: Path) -> RunManifest:
    path = folder / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BonsaiError("not a run folder (no manifest.json)", file=folder) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BonsaiError(f"the run manifest is not valid JSON: {exc}", file=path) from None
    if not isinstance(data, dict) or "id" not in data:
        raise BonsaiError("the run manifest has no id", file=path, field="id")
    return RunManifest.from_dict(data)


def create_run(garden: Garden, manifest: RunManifest) -> Run:
    """Make the run folder, write its manifest and index it."""
    run_id = manifest.id or new_run_id(garden, manifest.dataset)
    folder = garden.runs_dir / run_id
    folder.mkdir(parents=True)
    now = time.time()
    manifest = replace(
        manifest,
        id=run_id,
        status="running",
        created_at=now,
        updated_at=now,
        pid=os.getpid(),
        host=socket.gethostname(),
    )
    run = Run(folder, manifest)
    save_manifest(garden, run)
    return run


def save_manifest(garden: Garden, run: Run) -> None:
    """Write the manifest (atomically) and bring the index row up to date."""
    run.manifest.updated_at = time.time()
    atomic_write_json(run.manifest_path, run.manifest.to_dict())
    _index(garden, run)


def set_status(garden: Garden, run: Run, status: str, *, error: str | None = None) -> None:
    assert status in STATUSES, status
    run.manifest.status = status
    if status == "running":
        run.manifest.pid = os.getpid()
        run.manifest.host = socket.gethostname()
        run.manifest.error = None
    if status == "finished":
        run.manifest.finished_at = time.time()
    if error is not None:
        run.manifest.error = error
    save_manifest(garden, run)


def _index(garden: Garden, run: Run) -> None:
    m = run.manifest
    with transaction(garden.db):
        garden.db.execute(
            "INSERT INTO training_runs (id, dataset, shard, status, parent, layout, base_model,"
            " created_at, finished_at, summary) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT(id) DO UPDATE SET status = excluded.status,"
            " finished_at = excluded.finished_at, summary = excluded.summary",
            (
                m.id,
                m.dataset,
                m.shard,
                m.status,
                m.parent,
                m.layout,
                m.base_model_name,
                m.created_at or time.time(),
                m.finished_at,
                json.dumps(m.summary, ensure_ascii=False),
            ),
        )


def list_runs(garden: Garden, *, dataset: str | None = None) -> list[Run]:
    """Every run folder of the garden, oldest first (folders that are not runs are ignored)."""
    runs = []
    if garden.runs_dir.is_dir():
        for folder in garden.runs_dir.iterdir():
            if folder.name.startswith(".") or not (folder / MANIFEST).is_file():
                continue
            try:
                run = Run(folder, read_manifest(folder))
            except BonsaiError:
                continue
            if dataset is None or run.dataset == dataset:
                runs.append(run)
    return sorted(runs, key=lambda r: (r.manifest.created_at, r.id))


def load_run(garden: Garden, ref: str) -> Run:
    """A run by id, by a unique start of its id, or 'latest'."""
    runs = list_runs(garden)
    if ref == "latest":
        if not runs:
            raise BonsaiError("this garden has no runs yet", hint="`bonsai train` starts one")
        return runs[-1]
    exact = [r for r in runs if r.id == ref]
    if exact:
        return exact[0]
    matches = [r for r in runs if r.id.startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        names = ", ".join(r.id for r in matches[:5])
        raise BonsaiError(f"'{ref}' matches several runs: {names}", hint="give more of the id")
    raise BonsaiError(f"no run '{ref}' in this garden", hint="`bonsai runs` lists them")


def latest_unfinished(garden: Garden, *, dataset: str | None = None) -> Run | None:
    unfinished = [r for r in list_runs(garden, dataset=dataset) if r.is_unfinished()]
    return unfinished[-1] if unfinished else None


def promote(garden: Garden, run: Run) -> None:
    """Mark ``run`` as the one chat and serving use (and no other)."""
    if run.status != "finished":
        raise BonsaiError(f"run '{run.id}' is {run.status}: only a finished run can be promoted")
    _index(garden, run)
    with transaction(garden.db):
        garden.db.execute("UPDATE training_runs SET promoted = 0 WHERE promoted = 1")
        garden.db.execute("UPDATE training_runs SET promoted = 1 WHERE id = ?", (run.id,))


def promoted_run(garden: Garden) -> Run | None:
    row = garden.db.execute("SELECT id FROM training_runs WHERE promoted = 1").fetchone()
    return load_run(garden, row[0]) if row else None


# -- metrics --------------------------------------------------------------------------------------


def append_metric(run: Run, entry: dict[str, Any]) -> None:
    with run.metrics_path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry, ensure_ascii=False) + "\n")


def read_metrics(run: Run) -> list[dict[str, Any]]:
    if not run.metrics_path.is_file():
        return []
    entries = []
    for line in run.metrics_path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut short by a kill; the rest is still good
    return entries


def keep_metrics_upto(run: Run, step: int) -> None:
    """Drop entries logged after ``step`` (a run killed after its last checkpoint logged steps
    that the resumed run will log again). An epoch that starts at ``step`` is logged again too."""
    kept = [
        e
        for e in read_metrics(run)
        if int(e.get("step", 0)) < step
        or (int(e.get("step", 0)) == step and e.get("kind") != "epoch")
    ]
    text = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in kept)
    atomic_write_text(run.metrics_path, text)
