"""What each kind of job does, in the worker process: the same functions the CLI calls.

Each task takes the garden, the job's parameters (as the page sent them) and a reporter, and
returns a JSON-able result. Ctrl-C semantics come from the worker (a SIGINT), so a stopped
task ends exactly as a stopped command does.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from bonsai.errors import BonsaiError
from bonsai.garden import Garden

Task = Callable[[Garden, dict[str, Any], Any], dict[str, Any]]


def _given(**values: Any) -> dict[str, Any]:
    """The settings a job was given: None means left out, so the stage's default holds."""
    return {name: value for name, value in values.items() if value is not None}


def _opt_int(params: dict[str, Any], name: str) -> int | None:
    value = params.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BonsaiError(f"must be a whole number, not {value!r}", field=name) from None


def _opt_float(params: dict[str, Any], name: str) -> float | None:
    value = params.get(name)
    if value in (None, ""):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise BonsaiError(f"must be a number, not {value!r}", field=name) from None


def _opt_str(params: dict[str, Any], name: str) -> str | None:
    value = params.get(name)
    return str(value).strip() or None if value not in (None, "") else None


# -- teach ----------------------------------------------------------------------------------------


class _TeachProgress:
    """The teach runner's Progress protocol, reported to the job."""

    def __init__(self, reporter: Any) -> None:
        self.reporter = reporter
        self.done = self.failed = self.total = 0

    def start(self, total: int, *, completed: int) -> None:
        self.total, self.done = total, completed
        self.reporter.progress(done=completed, total=total, failed=0, force=True)

    def advance(self, *, failed: bool) -> None:
        self.done += 1
        self.failed += int(failed)
        self.reporter.progress(done=self.done, total=self.total, failed=self.failed)

    def stop(self) -> None:
        self.reporter.progress(done=self.done, total=self.total, failed=self.failed, force=True)


def teach_args(garden: Garden, params: dict[str, Any]):
    from bonsai.teach.args import TeachArgs

    dataset = _opt_str(params, "dataset")
    if not dataset:
        raise BonsaiError("which dataset?", field="dataset")
    return TeachArgs.from_config(
        garden.config.teacher,
        dataset,
        backend=_opt_str(params, "backend"),
        base_url=_opt_str(params, "base_url"),
        model=_opt_str(params, "model"),
        api_key_env=_opt_str(params, "api_key_env"),
        concurrency=_opt_int(params, "concurrency"),
        only_missing=bool(params.get("only_missing")) or None,
        limit=_opt_int(params, "limit"),
        language_policy=_opt_str(params, "language_policy"),
    )


def run_teach(garden: Garden, params: dict[str, Any], reporter: Any) -> dict[str, Any]:
    from bonsai.teach.backends import make_teacher
    from bonsai.teach.runner import plan_run, teach

    args = teach_args(garden, params)
    teacher = make_teacher(args, garden.config)
    plan = plan_run(garden, args, teacher)
    reporter.log(
        f"Teaching {len(plan.jobs):,} records of {args.dataset} with the {teacher.backend} "
        f"teacher ({teacher.model}): {len(plan.misses):,} to ask, "
        f"{len(plan.jobs) - len(plan.misses):,} cached, {plan.skipped:,} skipped."
    )
    summary = teach(garden, args, teacher, progress=_TeachProgress(reporter), plan=plan)
    result = summary.to_dict()
    for failure in summary.failed:
        reporter.log(f"failed {failure.record_id}: {failure.reason} ({failure.attempts} attempts)")
    reporter.log(
        f"Taught {summary.done:,}, from cache {summary.cached:,}, failed {len(summary.failed):,};"
        f" wrote {summary.written:,} reasonings"
        + (f" as change #{summary.changeset}." if summary.changeset else ".")
    )
    if summary.aborted:
        raise BonsaiError(summary.aborted, hint=summary.abort_hint)
    return result


# -- train ----------------------------------------------------------------------------------------

TRAIN_KNOBS = ("layout", "from_run", "shard", "epochs", "max_steps", "lr", "lora_rank")
"""The settings the Train page offers; the train stage derives the rest and prints them."""


def _run_of_this_process(garden: Garden) -> str | None:
    from bonsai.runs import list_runs

    for run in reversed(list_runs(garden)):
        if run.manifest.pid == os.getpid() and run.status == "running":
            return run.id
    return None


def run_train(garden: Garden, params: dict[str, Any], reporter: Any) -> dict[str, Any]:
    from bonsai import runs
    from bonsai.train.args import TrainArgs
    from bonsai.train.loop import resume, train

    found: dict[str, Any] = {"run": params.get("run")}

    def on_step(state: Any) -> None:
        if not found["run"]:
            found["run"] = _run_of_this_process(garden)
        if found["run"] and not found.get("total"):
            found["total"] = runs.load_run(garden, found["run"]).manifest.total_steps
        reporter.progress(done=state.step, run=found["run"], total=found.get("total"))

    if params.get("resume"):
        unfinished = runs.latest_unfinished(garden, dataset=_opt_str(params, "dataset"))
        if unfinished is None:
            raise BonsaiError("no unfinished run to resume")
        found["run"] = unfinished.id
        found["total"] = unfinished.manifest.total_steps
        reporter.progress(run=unfinished.id, force=True)
        run = resume(garden, dataset=unfinished.dataset, console=reporter.console, on_step=on_step)
    else:
        dataset = _opt_str(params, "dataset")
        if not dataset:
            raise BonsaiError("which dataset?", field="dataset")
        flags = {
            "layout": _opt_str(params, "layout"),
            "from_run": _opt_str(params, "from_run"),
            "shard": _opt_int(params, "shard"),
            "epochs": _opt_float(params, "epochs"),
            "max_steps": _opt_int(params, "max_steps"),
            "lr": _opt_float(params, "lr"),
            "lora_rank": _opt_int(params, "lora_rank"),
            "base_model": _opt_str(params, "base_model"),
            "eval_every": _opt_int(params, "eval_every"),
        }
        run = train(
            garden, TrainArgs.from_flags(dataset, **flags), console=reporter.console,
            on_step=on_step,
        )  # fmt: skip
    if run is None:
        return {}
    reporter.progress(run=run.id, force=True)
    result = {"run": run.id, "status": run.status}
    if run.status == "interrupted":
        result["_state"] = "interrupted"
    return result


def train_preview(garden: Garden, params: dict[str, Any]) -> str:
    """The plan a train job would follow (data, derived settings, warnings), as text: what
    ``bonsai train --dry-run`` prints first."""
    import io

    from rich.console import Console

    from bonsai.train.args import TrainArgs
    from bonsai.train.prepare import prepare
    from bonsai.train.report import RunLog, print_plan

    dataset = _opt_str(params, "dataset")
    if not dataset:
        raise BonsaiError("which dataset?", field="dataset")
    flags = {name: params.get(name) for name in TRAIN_KNOBS}
    flags = {
        "layout": _opt_str(flags, "layout"),
        "from_run": _opt_str(flags, "from_run"),
        "shard": _opt_int(flags, "shard"),
        "epochs": _opt_float(flags, "epochs"),
        "max_steps": _opt_int(flags, "max_steps"),
        "lr": _opt_float(flags, "lr"),
        "lora_rank": _opt_int(flags, "lora_rank"),
    }
    buffer = io.StringIO()
    console = Console(file=buffer, width=400, color_system=None, highlight=False, soft_wrap=True)
    prep = prepare(garden, TrainArgs.from_flags(dataset, dry_run=True, **flags))
    print_plan(prep, RunLog(console))
    return buffer.getvalue()


# -- eval -----------------------------------------------------------------------------------------


class _Phases:
    """The evaluation's Phases protocol, reported to the job."""

    def __init__(self, reporter: Any) -> None:
        self.reporter = reporter

    def phase(self, description: str, total: int) -> Callable[[int], None]:
        done = [0]
        self.reporter.log(description)
        self.reporter.progress(message=description, done=0, total=total, force=True)

        def advance(n: int = 1) -> None:
            done[0] += n
            self.reporter.progress(done=done[0], total=total)

        return advance

    def note(self, message: str) -> None:
        self.reporter.log(f"  · {message}")

    def close(self) -> None:
        pass


def run_eval(garden: Garden, params: dict[str, Any], reporter: Any) -> dict[str, Any]:
    from bonsai.evaluate.args import EvalArgs
    from bonsai.evaluate.runner import evaluate

    run = _opt_str(params, "run")
    if not run:
        raise BonsaiError("which run?", field="run")
    against = [a for a in (params.get("against") or []) if a]
    args = EvalArgs(
        run=run,
        against=against,
        max_items=_opt_int(params, "max_items"),
        max_probes=_opt_int(params, "max_probes"),
        builtin_probes=params.get("builtin_probes", True) is not False,
        # Left out (or 0 for the answer length): the stage's defaults.
        **_given(
            max_new_tokens=_opt_int(params, "max_new_tokens") or None,
            seed_probes=_opt_int(params, "seed_probes"),
        ),
    )
    reporter.log(f"Evaluating run {run}")
    outcome = evaluate(garden, args, phases=_Phases(reporter))
    reporter.log(f"Report: {outcome.html}")
    return {"run": run, "report": str(outcome.html), "json": str(outcome.json)}


# -- grow -----------------------------------------------------------------------------------------


def run_grow(garden: Garden, params: dict[str, Any], reporter: Any) -> dict[str, Any]:
    from dataclasses import asdict

    from bonsai.grow.args import GrowArgs, PromotionRule
    from bonsai.grow.pipeline import Hooks, grow

    rule = PromotionRule(
        max_val_loss_increase=_opt_float(params, "max_val_loss_increase") or 0.02,
        judge_creative=bool(params.get("judge_creative")),
    )
    args = GrowArgs(
        dataset=_opt_str(params, "dataset"),
        steps=_opt_int(params, "steps"),
        epochs=_opt_float(params, "epochs"),
        experiences_as_records=bool(params.get("experiences_as_records")),
        dismiss_reviews=bool(params.get("dismiss_reviews")),
        eval_max_items=_opt_int(params, "eval_max_items") or 64,
        eval_max_probes=(
            _opt_int(params, "eval_max_probes")
            if params.get("eval_max_probes") not in (None, "")
            else 24
        ),
        eval_max_new_tokens=_opt_int(params, "eval_max_new_tokens") or 64,
        promotion=rule,
    )
    hooks = Hooks(
        note=lambda message: reporter.log(f"  · {message}"),
        console=reporter.console,
        teach_progress=_TeachProgress(reporter),
        eval_phases=_Phases(reporter),
    )
    result = grow(garden, args, hooks=hooks)
    reporter.log(result.message)
    out: dict[str, Any] = {
        "status": result.status,
        "message": result.message,
        "current_run": result.current_run,
        "new_run": result.new_run,
        "dataset": result.dataset,
        "report": str(result.report) if result.report else None,
        "teach_failed": result.teach_failed,
    }
    if result.comparison is not None:
        out["comparison"] = asdict(result.comparison)
    if result.decision is not None:
        out["decision"] = result.decision.to_dict()
    if result.status == "interrupted":
        out["_state"] = "interrupted"
    return out


TASKS: dict[str, Task] = {
    "teach": run_teach,
    "train": run_train,
    "eval": run_eval,
    "grow": run_grow,
}
