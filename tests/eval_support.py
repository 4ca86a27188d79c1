"""Helpers shared by the evaluation tests: synthetic results, loss histories and fake runs."""

from __future__ import annotations

import json
from pathlib import Path

from bonsai.evaluate.diagnostics import LossHistory, LossPoint, RecordLoss
from bonsai.evaluate.probes import builtin_probes
from bonsai.evaluate.results import Answer, ModelAnswers, build_results
from bonsai.evaluate.scoring import Item
from bonsai.garden import Garden
from bonsai.records import Record
from bonsai.runs import RunManifest
from bonsai.store import Change, RecordStore


def probe_items() -> list[Item]:
    return [
        Item(
            id=p["id"],
            source="probe",
            category=p["category"],
            language=p["language"],
            instruction=p["instruction"],
            input=p["input"],
            reference=p["output"],
            accept=p["accept"],
        )
        for p in builtin_probes()
    ]


def staircase_history(
    epochs: int = 3, steps_per_epoch: int = 20, step_down: float = 0.4
) -> LossHistory:
    """Training loss falling slowly within an epoch and dropping by ``step_down`` at each new
    epoch; validation loss flat-ish then rising: the memorising shape."""
    history = LossHistory()
    for step in range(1, epochs * steps_per_epoch + 1):
        epoch = (step - 1) / steps_per_epoch
        loss = 3.0 - 0.01 * step - step_down * int(epoch)
        history.train.append(LossPoint(step, loss, epoch))
        if step % 10 == 0:
            val = 2.4 - 0.01 * step if step <= 20 else 2.2 + 0.02 * (step - 20)
            history.val.append(
                LossPoint(step, val, epoch, {"open_qa": val - 0.1, "translation": val + 0.2})
            )
    return history


def sample_results(*, with_history: bool = True) -> dict:
    """A results dict of two models on the built-in probes: a looping base, a decent tuned."""
    items = probe_items()
    base = [Answer("富士山は、日本で一番高い山です。" * 4) for _ in items]
    tuned = []
    for i, item in enumerate(items):
        text = item.reference if i % 4 else "I am not sure."
        tuned.append(
            Answer(text, reasoning="You should recall the fact.\nYou should answer briefly.")
        )
    losses = [RecordLoss(f"r{i}", "open_qa", "en", "val", 1.0 + 0.02 * i, 20) for i in range(10)]
    return build_results(
        items=items,
        models=[
            ModelAnswers(
                "base",
                "base model (tiny)",
                base,
                record_losses=[
                    RecordLoss(x.id, x.category, x.language, "val", x.loss + 1.0, x.tokens)
                    for x in losses
                ],
            ),
            ModelAnswers(
                "tuned", "run test (bonsai layout)", tuned, record_losses=losses, layout="bonsai"
            ),
        ],
        primary="tuned",
        run={"id": "run-test", "dataset": "cats", "layout": "bonsai", "base_model": "tiny"},
        history=staircase_history() if with_history else None,
        bootstrap_samples=200,
    )


def add_records(garden: Garden, dataset: str, records: list[Record]) -> None:
    RecordStore(garden.db).apply(
        dataset, [Change(None, r) for r in records], kind="import", description="test records"
    )


def simple_records(n: int = 12, *, with_val: bool = True) -> list[Record]:
    out = []
    for i in range(n):
        out.append(
            Record(
                id=f"rec-{i:02d}",
                instruction=f"What is fact number {i}?",
                output=f"Fact {i}.",
                category="open_qa",
                language="en",
                split=("val" if with_val and i % 4 == 0 else "train"),
            )
        )
    return out


def fake_run(
    garden: Garden, run_id: str, *, dataset: str = "cats", base_model: str = "tiny", **extra
) -> Path:
    """A run folder with only a manifest: enough for every check made before a model loads."""
    folder = garden.runs_dir / run_id
    folder.mkdir(parents=True, exist_ok=True)
    settings = {"layout": "alpaca", "status": "finished", **extra}
    manifest = RunManifest(id=run_id, base_model={"name": base_model}, dataset=dataset, **settings)
    (folder / "manifest.json").write_text(json.dumps(manifest.to_dict()), encoding="utf-8")
    return folder
