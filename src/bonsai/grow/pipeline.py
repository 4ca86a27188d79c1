"""``bonsai grow``: one round of the loop, from chat feedback to a (maybe) promoted adapter.

1. **ingest** — pending feedback becomes records, notes and a review list
   (:mod:`bonsai.grow.feedback_to_records`); records, feedback marks and the round row are
   committed in one transaction.
2. **teach** — the teacher writes the new records' reasoning (the garden's ``[teacher]``;
   offline templates unless one is configured). Only the round's records are taught.
3. **train** — a new run continues the current run's adapter (``--from``) on the whole
   dataset, new records included; the validation records stay the ones the current run had.
4. **evaluate** — the new run against the current one on the same validation records and
   probes, per category (:func:`bonsai.evaluate.runner.evaluate`).
5. **promote** — only if it is not worse (:mod:`bonsai.grow.promote`).

Every stage is recorded in the round's row as it finishes, so a grow stopped anywhere is
resumed by the next ``bonsai grow``. An open round that has not started training takes in
feedback that arrives meanwhile; one that has trained is finished first.

The *current* run is the promoted one; in a garden where nothing was promoted yet, the newest
finished run that no grow rejected; with no run at all, the base model (the first grow then
trains from the base model and is compared with it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bonsai.errors import BonsaiError
from bonsai.garden import Garden
from bonsai.grow import rounds
from bonsai.grow.args import GrowArgs
from bonsai.grow.feedback_to_records import (
    FeedbackPlan,
    ingest,
    plan_feedback,
    write_review,
)
from bonsai.grow.promote import Comparison, Decision, comparison_from_results, decide
from bonsai.grow.rounds import GrowRound
from bonsai.layouts import BASE
from bonsai.runs import Run
from bonsai.store import Change, RecordStore

NEW_KEY = "new"
CURRENT_KEY = "current"


@dataclass
class Hooks:
    """Where a grow reports (the CLI passes rich output; library use and tests stay quiet)."""

    note: Callable[[str], None] = lambda message: None
    """A line of information: what was chosen, derived, skipped."""
    console: Any = None
    """Rich console for the train stage's log and progress (None: train's default)."""
    teach_progress: Any = None
    """A ``bonsai.teach.runner.Progress`` for the teacher (None: quiet)."""
    eval_phases: Any = None
    """A ``bonsai.evaluate.progress.Phases`` for the evaluation (None: quiet)."""
    planned: Callable[[GrowResult], None] = lambda result: None
    """Called once the feedback is planned (``result.plan``) and before anything is written."""


@dataclass
class GrowResult:
    """What one ``bonsai grow`` did (or, with ``dry_run``, would do)."""

    status: str
    """'nothing' (no feedback to learn from), 'dry-run', 'ingested' (records made; training
    not asked for), 'promoted', 'kept' (the new run was worse) or 'interrupted'."""
    message: str
    current_run: str = BASE
    dataset: str | None = None
    plan: FeedbackPlan | None = None
    round: GrowRound | None = None
    resumed: bool = False
    """The round was left unfinished by an earlier grow and continued here."""
    new_run: str | None = None
    taught: int = 0
    teach_failed: list[str] = field(default_factory=list)
    comparison: Comparison | None = None
    decision: Decision | None = None
    report: Path | None = None
    review_file: Path | None = None
    notes: list[str] = field(default_factory=list)
    """What was decided along the way (also passed to ``Hooks.note``)."""


# -- choosing the current run and the dataset --------------------------------------------------


def _rejected_runs(garden: Garden) -> set[str]:
    return {
        r.new_run
        for r in rounds.list_rounds(garden.db)
        if r.new_run and r.reached("evaluated") and not r.promoted
    }


def current_run(garden: Garden) -> Run | None:
    """The run a grow continues: the promoted one, else the newest finished run no grow
    rejected; None when there is none (grow from the base model)."""
    from bonsai import runs

    promoted = runs.promoted_run(garden)
    if promoted is not None:
        return promoted
    rejected = _rejected_runs(garden)
    finished = [
        r for r in runs.list_runs(garden) if r.status == "finished" and r.id not in rejected
    ]
    return finished[-1] if finished else None


def choose_dataset(garden: Garden, args: GrowArgs, run: Any) -> str:
    if args.dataset:
        return args.dataset
    if run is not None and run.dataset:
        return str(run.dataset)
    names = RecordStore(garden.db).dataset_names()
    if len(names) == 1:
        return names[0]
    if not names:
        raise BonsaiError(
            "this garden has no dataset for the new records yet",
            field="dataset",
            hint="pass --dataset NAME to create one",
        )
    raise BonsaiError(
        "which dataset should the new records join?",
        field="dataset",
        hint=f"pass --dataset NAME; datasets here: {', '.join(names)}",
    )


# -- the stages ---------------------------------------------------------------------------------


def teach_round(garden: Garden, round_: GrowRound, hooks: Hooks) -> tuple[int, list[str]]:
    """Reasoning for the round's records that have none; (records taught, failures)."""
    from bonsai.teach.args import TeachArgs
    from bonsai.teach.backends import make_teacher
    from bonsai.teach.runner import plan_run, teach

    store = RecordStore(garden.db)
    wanted = set(round_.records)
    todo = {
        r.id for r in store.records(round_.dataset) if r.id in wanted and not (r.reasoning or "")
    }
    if not todo:
        return 0, []
    args = TeachArgs.from_config(garden.config.teacher, round_.dataset, only_missing=True)
    teacher = make_teacher(args, garden.config)
    hooks.note(f"teacher: {teacher.backend} ({teacher.model}) for {len(todo)} new record(s)")
    plan = plan_run(garden, args, teacher)
    # Only the round's records: other records without reasoning are the user's business.
    jobs = [job for job in plan.jobs if job.record.id in todo]
    plan = replace(plan, jobs=jobs, skipped=plan.total_records - len(jobs))
    summary = teach(garden, args, teacher, progress=hooks.teach_progress, plan=plan)
    if summary.aborted:
        raise BonsaiError(
            f"the teacher stopped: {summary.aborted}",
            hint=(summary.abort_hint or "fix it and run `bonsai grow` again")
            + "; the round resumes where it stopped",
        )
    failed = [f"{f.record_id}: {f.reason}" for f in summary.failed]
    return summary.written, failed


def refresh_dataset_notes(garden: Garden, dataset: str) -> bool:
    """Re-add the dataset to the knowledge base if it is there (``bonsai notes add --dataset``),
    so chat retrieves the new records too. Only new chunks are embedded."""
    from bonsai.rag.notes import DATASET_PREFIX, add_dataset

    source = f"{DATASET_PREFIX}{dataset}"
    row = garden.db.execute(
        "SELECT 1 FROM knowledge_documents WHERE source = ?", (source,)
    ).fetchone()
    if row is None:
        return False
    add_dataset(garden, dataset)
    return True


def pin_validation_split(garden: Garden, dataset: str, run: Any) -> int:
    """Keep the current run's validation records for the new run.

    A dataset without a stored split gets one made per run, which would shift once new
    records join; storing the current run's validation ids as split 'val' (one undoable
    changeset) makes the new run validate on exactly the records the current one did.
    Returns how many records were marked."""
    if run is None:
        return 0
    store = RecordStore(garden.db)
    records = store.records(dataset)
    if any(r.split == "val" for r in records):
        return 0
    wanted = set(run.manifest.val_ids)
    changes = [Change(r, replace(r, split="val")) for r in records if r.id in wanted]
    store.apply(
        dataset,
        changes,
        kind="split",
        description=f"grow: keep the validation records of run {run.id} as the validation split",
    )
    return len(changes)


def train_round(garden: Garden, args: GrowArgs, round_: GrowRound, hooks: Hooks) -> Run | None:
    """The new run: continues the current run's adapter on the whole dataset. Resumes this
    round's run if an earlier grow was stopped while training it."""
    from bonsai import runs
    from bonsai.train.args import TrainArgs
    from bonsai.train.loop import resume, train

    parent = None if round_.current_run == BASE else round_.current_run
    started = float(round_.settings.get("train_started_at") or 0)
    stopped = runs.latest_unfinished(garden, dataset=round_.dataset) if started else None
    if stopped is not None and stopped.manifest.created_at >= started and stopped.parent == parent:
        hooks.note(f"continuing the interrupted run {stopped.id}")
        try:
            return resume(garden, dataset=round_.dataset, console=hooks.console)
        except BonsaiError as exc:
            # Feedback that arrived meanwhile joined the round: the old curve no longer fits.
            hooks.note(f"run {stopped.id} cannot continue ({exc.message}); starting a new run")
    flags: dict[str, Any] = {"dataset": round_.dataset, "seed": args.seed}
    if parent is not None:
        flags["from_run"] = parent
    else:
        hooks.note("no run yet: the new run trains from the base model")
    if args.steps is not None:
        flags["max_steps"] = args.steps
    if args.epochs is not None:
        flags["epochs"] = args.epochs
    round_.settings["train_started_at"] = time.time()
    rounds.save_round(garden.db, round_)
    return train(garden, TrainArgs(**flags), console=hooks.console)


def evaluate_round(
    garden: Garden, args: GrowArgs, round_: GrowRound, hooks: Hooks
) -> tuple[Comparison, Decision, Path]:
    """The new run against the current one on the same validation records and probes."""
    from bonsai.evaluate.args import EvalArgs
    from bonsai.evaluate.runner import evaluate

    assert round_.new_run is not None
    before_key = CURRENT_KEY if round_.current_run != BASE else BASE
    keys = {round_.new_run: NEW_KEY}
    if round_.current_run != BASE:
        keys[round_.current_run] = CURRENT_KEY
    eval_args = EvalArgs(
        run=round_.new_run,
        against=[round_.current_run if round_.current_run != BASE else BASE],
        builtin_probes=args.eval_max_probes != 0,
        max_items=args.eval_max_items,
        max_probes=args.eval_max_probes,
        max_new_tokens=args.eval_max_new_tokens,
        seed=args.seed,
    )
    outcome = evaluate(
        garden,
        eval_args,
        phases=hooks.eval_phases,
        kind="grow",
        keys=keys,
        title=f"BONSAI grow · {round_.new_run} vs {round_.current_run}",
        headline_against=before_key,
        extra={"grow": {"round": round_.id, "records": round_.records}},
    )
    comparison = comparison_from_results(outcome.results, NEW_KEY, before_key)
    comparison.before, comparison.after = round_.current_run, round_.new_run
    return comparison, decide(comparison, args.promotion), outcome.html


def promote_round(garden: Garden, round_: GrowRound, decision: Decision, hooks: Hooks) -> None:
    """Promote the new run if the rule says so; otherwise keep the current one in place."""
    from bonsai import runs

    if decision.promote:
        assert round_.new_run is not None
        runs.promote(garden, runs.load_run(garden, round_.new_run))
    elif round_.current_run != BASE and runs.promoted_run(garden) is None:
        # Nothing was promoted yet, so "current" was the newest finished run. Marking it
        # keeps chat and serving on it rather than on the newer, rejected run.
        runs.promote(garden, runs.load_run(garden, round_.current_run))
        hooks.note(f"run {round_.current_run} stays current (now marked promoted)")


# -- the round ----------------------------------------------------------------------------------


def _finish_round(garden: Garden, args: GrowArgs, result: GrowResult, hooks: Hooks) -> GrowResult:
    """Run the stages the round has not finished yet."""
    round_ = result.round
    assert round_ is not None
    conn = garden.db
    if not round_.records:
        rounds.advance(conn, round_, "done")
        result.status, result.message = "ingested", _ingest_message(result)
        return result
    if not round_.reached("taught"):
        if args.teach:
            result.taught, result.teach_failed = teach_round(garden, round_, hooks)
            for failure in result.teach_failed:
                hooks.note(f"no reasoning for {failure}")
        rounds.advance(conn, round_, "taught")
    if not args.train:
        result.status = "ingested"
        result.message = _ingest_message(result) + (
            " Not trained (--no-train): `bonsai grow` trains them."
        )
        return result
    if not round_.reached("trained"):
        from bonsai import runs

        current = None if round_.current_run == BASE else runs.load_run(garden, round_.current_run)
        pinned = pin_validation_split(garden, round_.dataset, current)
        if pinned:
            hooks.note(
                f"{pinned} validation records of run {round_.current_run} stored as the "
                "dataset's validation split, so both runs are judged on the same records"
            )
        run = train_round(garden, args, round_, hooks)
        if run is None or run.status != "finished":
            status = run.status if run is not None else "not started"
            result.status = "interrupted"
            result.message = f"Training stopped ({status}); `bonsai grow` continues the round."
            return result
        rounds.advance(conn, round_, "trained", new_run=run.id)
    result.new_run = round_.new_run
    if not round_.reached("evaluated"):
        comparison, decision, report = evaluate_round(garden, args, round_, hooks)
        rounds.advance(
            conn,
            round_,
            "evaluated",
            decision={"decision": decision.to_dict(), "comparison": _comparison_dict(comparison)},
            report=str(report),
        )
        result.comparison, result.decision, result.report = comparison, decision, report
    else:
        result.comparison, result.decision = _restore_decision(round_, args)
        result.report = Path(round_.report) if round_.report else None
    assert result.decision is not None
    promote_round(garden, round_, result.decision, hooks)
    rounds.advance(conn, round_, "done", promoted=result.decision.promote)
    if result.decision.promote:
        result.status = "promoted"
        result.message = f"Run {round_.new_run} is not worse than {round_.current_run}: promoted."
    else:
        result.status = "kept"
        why = "; ".join(result.decision.reasons)
        result.message = (
            f"Run {round_.new_run} is worse than {round_.current_run} ({why}): "
            f"{round_.current_run} stays current."
        )
    return result


def _comparison_dict(comparison: Comparison) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(comparison)


def _restore_decision(round_: GrowRound, args: GrowArgs) -> tuple[Comparison, Decision]:
    """The verdict an interrupted round reached before it stopped (the rule is applied again,
    so the one printed is the one used)."""
    from bonsai.grow.promote import CategoryScore

    data = dict((round_.decision or {}).get("comparison") or {})
    data["categories"] = [CategoryScore(**c) for c in data.get("categories") or []]
    comparison = Comparison(**data)
    return comparison, decide(comparison, args.promotion)


def _ingest_message(result: GrowResult) -> str:
    round_ = result.round
    assert round_ is not None
    parts = [f"{len(round_.records)} new record(s) in dataset '{round_.dataset}'"]
    if round_.notes:
        parts.append(f"{len(round_.notes)} note(s)")
    return "Made " + " and ".join(parts) + "."


def _nothing_message(plan: FeedbackPlan) -> str:
    if not plan.pending:
        return (
            "No pending feedback: nothing to grow. In `bonsai chat`, rate answers, correct "
            "them or tell your bonsai what to remember."
        )
    kept = []
    if plan.review:
        kept.append(f"{len(plan.review)} answer(s) to review")
    if plan.good:
        kept.append(f"{plan.good} good rating(s)")
    return (
        "Nothing to grow from: no corrections or experiences pending"
        + (f" ({', '.join(kept)} kept pending)" if kept else "")
        + "."
    )


def grow(garden: Garden, args: GrowArgs, *, hooks: Hooks | None = None) -> GrowResult:
    """One grow round (or the rest of an unfinished one). See the module docstring."""
    hooks = hooks or Hooks()
    notes: list[str] = []

    outer = hooks.note

    def note(message: str) -> None:
        notes.append(message)
        outer(message)

    hooks = replace(hooks, note=note)
    conn = garden.db
    open_round = rounds.unfinished_round(conn)
    if open_round is not None and args.dataset and args.dataset != open_round.dataset:
        raise BonsaiError(
            f"round {open_round.id} is still open and collects records in dataset "
            f"'{open_round.dataset}', not '{args.dataset}'",
            field="dataset",
            hint="run `bonsai grow` without --dataset to finish it first",
        )
    if open_round is not None and open_round.reached("trained"):
        # Trained already: the new feedback is not in that run. Finish the round first.
        result = GrowResult(
            status="resumed",
            message="",
            current_run=open_round.current_run,
            dataset=open_round.dataset,
            round=open_round,
            resumed=True,
            notes=notes,
        )
        if args.dry_run:
            result.status = "dry-run"
            result.message = (
                f"Would finish round {open_round.id} (stopped after: {open_round.stage}): "
                "evaluate and maybe promote its run; new feedback waits for the next grow."
            )
            return result
        note(f"finishing round {open_round.id} (stopped after: {open_round.stage})")
        return _finish_round(garden, args, result, hooks)

    run = current_run(garden)
    current = run.id if run is not None else BASE
    round_id = open_round.id if open_round is not None else rounds.new_round_id()
    plan = plan_feedback(garden, round_id, experiences_as_records=args.experiences_as_records)
    result = GrowResult(status="nothing", message="", current_run=current, plan=plan, notes=notes)
    if not args.dry_run:
        result.review_file = write_review(garden, plan.review)
    work = plan.has_work or (args.dismiss_reviews and bool(plan.review))
    if not work and open_round is None:
        result.message = _nothing_message(plan)
        return result
    if open_round is not None and not work and not args.train and open_round.reached("taught"):
        result.round = open_round
        result.message = (
            f"Nothing new. The {len(open_round.records)} record(s) of round {open_round.id} "
            "wait for training: `bonsai grow` trains them."
        )
        return result
    if open_round is not None:
        result.round, result.resumed = open_round, True
        result.dataset, result.current_run = open_round.dataset, open_round.current_run
        note(f"continuing round {open_round.id} (stopped after: {open_round.stage})")
    else:
        result.dataset = choose_dataset(garden, args, run)
    hooks.planned(result)
    if args.dry_run:
        result.status = "dry-run"
        result.message = "Dry run: nothing was written."
        return result
    if work:
        round_ = open_round or GrowRound(
            id=round_id,
            dataset=str(result.dataset),
            stage="ingested",
            current_run=current,
            settings=args.to_dict(),
        )
        ingest(garden, plan, round_, dismiss_reviews=args.dismiss_reviews)
        result.round = round_
        if plan.records and refresh_dataset_notes(garden, round_.dataset):
            note(f"dataset '{round_.dataset}' refreshed in the knowledge base")
    return _finish_round(garden, args, result, hooks)
