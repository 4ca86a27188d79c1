"""``bonsai eval --ablation``: do category and reasoning help a small model?

The same dataset is trained twice (or more) from the same base model, once per prompt layout:
``alpaca`` (instruction → output) and ``bonsai`` (category and language in the prompt; the model
writes the reasoning, then the output). Both runs get the same budget: the same optimiser steps,
sequence limit, learning-rate schedule and seed (hence the same data order and the same initial
adapter). Both are then evaluated on the same validation records and probes, side by side with
the base model, and the report gives the difference per category with bootstrap intervals.

The `bonsai` layout writes more tokens per record (its reasoning), so equal steps means it
sees more target tokens; the report lists the tokens each run trained on.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from rich.console import Console

from bonsai.errors import BonsaiError
from bonsai.evaluate.args import BASE, AblationArgs, EvalArgs
from bonsai.evaluate.progress import Phases, QuietPhases
from bonsai.evaluate.runner import EvalOutcome, evaluate
from bonsai.garden import Garden
from bonsai.store import RecordStore


def _check_dataset(garden: Garden, dataset: str) -> None:
    """Fail before any training if the dataset cannot be evaluated."""
    store = RecordStore(garden.db)
    records = store.records(dataset)  # names the known datasets when it does not exist
    if not any(r.split == "val" for r in records):
        raise BonsaiError(
            f"dataset '{dataset}' has no validation split: an ablation needs one to compare on",
            hint=f"`bonsai data split --dataset {dataset} --val 0.1`",
        )
    # The bonsai layout skips records without a reasoning; the alpaca layout would not, and
    # the two runs would no longer see the same records.
    missing = [r.id for r in records if not (r.reasoning or "").strip()]
    if missing:
        raise BonsaiError(
            f"{len(missing)} record(s) of dataset '{dataset}' have no reasoning (e.g. "
            f"{', '.join(missing[:3])}): both layouts must train on the same records",
            hint=f"`bonsai teach --dataset {dataset} --only-missing` writes them",
        )


def train_layout(
    garden: Garden, args: AblationArgs, layout: str, phases: Phases, console: Console | None
) -> str:
    """Train ``args.dataset`` with ``layout`` on the ablation's budget; returns the run id."""
    from bonsai.train.args import TrainArgs
    from bonsai.train.loop import train

    settings: dict[str, Any] = {"dataset": args.dataset, "layout": layout, "seed": args.seed}
    if args.max_steps is not None:
        settings["max_steps"] = args.max_steps
    if args.epochs is not None:
        settings["epochs"] = args.epochs
    if args.max_length is not None:
        settings["max_length"] = args.max_length
    if args.base_model is not None:
        settings["base_model"] = args.base_model
    if args.threads is not None:
        settings["threads"] = args.threads
    phases.note(f"training with the {layout} layout")
    run = train(garden, TrainArgs(**settings), console=console)
    if run is None or run.status != "finished":
        raise BonsaiError(
            f"the {layout} run did not finish ({run.status if run else 'not started'})",
            hint="`bonsai train --resume` continues it; then rerun the ablation",
        )
    return run.id


def _run_facts(garden: Garden, run_id: str) -> dict[str, Any]:
    """Steps, tokens and final losses of a run, from its manifest (what the budgets were)."""
    path = garden.runs_dir / run_id / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {"run": run_id}
    keys = (
        "layout",
        "steps",
        "max_steps",
        "epochs",
        "tokens",
        "train_tokens",
        "seed",
        "max_length",
    )
    facts = {k: manifest.get(k, (manifest.get("args") or {}).get(k)) for k in keys}
    facts.update(
        {k: v for k, v in (manifest.get("result") or {}).items() if "loss" in k or "token" in k}
    )
    return {"run": run_id, **{k: v for k, v in facts.items() if v is not None}}


def run_ablation(
    garden: Garden,
    args: AblationArgs,
    *,
    phases: Phases | None = None,
    runs: dict[str, str] | None = None,
    console: Console | None = None,
) -> EvalOutcome:
    """Train one run per layout (or use ``runs``: layout → existing run id, for tests and
    reruns), then evaluate them side by side with the base model."""
    phases = phases or QuietPhases()
    _check_dataset(garden, args.dataset)
    eval_args = args.eval or EvalArgs(run="(ablation)")
    runs = dict(runs or {})
    for layout in args.layouts:
        if layout not in runs:
            runs[layout] = train_layout(garden, args, layout, phases, console)
    primary_layout = args.layouts[-1]
    others = [runs[layout] for layout in args.layouts[:-1]]
    keys = {runs[layout]: layout for layout in args.layouts}
    settings = replace(eval_args, run=runs[primary_layout], against=[*others, BASE])
    return evaluate(
        garden,
        settings,
        phases=phases,
        kind="ablation",
        keys=keys,
        title=f"BONSAI ablation · {' vs '.join(args.layouts)} on {args.dataset}",
        headline_against=keys[others[0]],
        extra={"ablation": {layout: _run_facts(garden, runs[layout]) for layout in args.layouts}},
    )
