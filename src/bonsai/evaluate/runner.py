"""``bonsai eval``: answer the validation split and the probes with a run, its parent and the
base model, deterministically and through chat's own prompt building and retrieval
(:mod:`bonsai.evaluate.asking`); score per category; write the report.

The order is chosen so that bad input fails in a second, before any model is loaded: the run,
its validation split, the probe file and the report folder are all checked first.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bonsai.env import SHARED_DATA
from bonsai.errors import BonsaiError
from bonsai.evaluate.args import BASE, PARENT, REASONING_TOKENS, EvalArgs
from bonsai.evaluate.asking import EvalRetriever, ask_all, open_eval_session
from bonsai.evaluate.diagnostics import RecordLoss, load_metrics
from bonsai.evaluate.probes import builtin_probes, load_probe_file, seed_translation_probes
from bonsai.evaluate.progress import Phases, QuietPhases
from bonsai.evaluate.report import check_writable, report_stem, write_report
from bonsai.evaluate.results import Answer, ModelAnswers, build_results, verdict
from bonsai.evaluate.runinfo import RunInfo, load_run
from bonsai.evaluate.scoring import Item
from bonsai.garden import Garden
from bonsai.generate.args import GenerateArgs
from bonsai.layouts import get_layout
from bonsai.records import UNIQUE_CATEGORIES, Record
from bonsai.store import RecordStore

TUNED = "tuned"


@dataclass
class EvalOutcome:
    html: Path
    json: Path
    results: dict[str, Any]
    verdict: dict[str, Any] | None
    """Headline comparison with the first model compared against (see ``results.verdict``)."""


@dataclass
class _Model:
    key: str
    label: str
    run: RunInfo | None
    layout: str


def shared_data_dir() -> Path | None:
    """The shared test data (``$BONSAI_SHARED_DATA``, or ``../shared/data`` beside the
    project), if present."""
    env = SHARED_DATA.get()
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[3].parent / "shared" / "data")
    return next((c for c in candidates if c.is_dir()), None)


# -- preparation (cheap, fails early) ----------------------------------------------------------


def _validation_records(garden: Garden, run: RunInfo) -> tuple[list[Record], list[Record]]:
    """(validation records, all records) of the run's dataset."""
    if not run.dataset:
        raise BonsaiError(
            "the run's manifest names no dataset",
            file=run.folder / "manifest.json",
            field="dataset",
        )
    store = RecordStore(garden.db)
    records = store.records(run.dataset)
    listed = run.manifest.val_ids
    if isinstance(listed, list) and listed:
        wanted = set(map(str, listed))
        val = [r for r in records if r.id in wanted]
    else:
        val = [r for r in records if r.split == "val"]
    if not val:
        raise BonsaiError(
            f"run '{run.id}' has no validation split: dataset '{run.dataset}' has no records "
            "with split 'val'",
            hint=f"`bonsai data split --dataset {run.dataset} --val 0.1`, then train again, "
            "or pass --probes FILE to evaluate on probes only",
        )
    return val, records


def _spread(items: Sequence[Item], limit: int | None, seed: int) -> list[Item]:
    """At most ``limit`` items, taken round-robin over categories so that each is represented."""
    if limit is None or len(items) <= limit:
        return list(items)
    by_category: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        by_category[item.category].append(item)
    rng = random.Random(seed)
    for group in by_category.values():
        rng.shuffle(group)
    chosen: list[Item] = []
    while len(chosen) < limit:
        for category in list(by_category):
            if by_category[category] and len(chosen) < limit:
                chosen.append(by_category[category].pop(0))
    keep = {id(i) for i in chosen}
    return [i for i in items if id(i) in keep]


def _record_item(record: Record) -> Item:
    return Item(
        id=record.id,
        source="val",
        category=record.category or "open_qa",
        language=record.language,
        instruction=record.instruction,
        input=record.input,
        reference=record.output,
        reasoning=record.reasoning,
    )


def _probe_item(probe: dict[str, Any]) -> Item:
    return Item(
        id=probe["id"],
        source="probe",
        category=probe["category"],
        language=probe.get("language"),
        instruction=probe["instruction"],
        input=probe.get("input", ""),
        reference=probe["output"],
        accept=list(probe.get("accept") or []),
        target_language=probe.get("target_language"),
    )


def collect_items(val: Sequence[Record], args: EvalArgs) -> list[Item]:
    """Validation items and probes, in that order, limited as the args say."""
    val_items = _spread([_record_item(r) for r in val if r.category], args.max_items, args.seed)
    probes: list[dict[str, Any]] = []
    if args.builtin_probes:
        probes += builtin_probes()
    if args.seed_probes:
        shared = shared_data_dir()
        if shared is not None:
            probes += seed_translation_probes(shared, limit=args.seed_probes)
    if args.probes is not None:
        probes += load_probe_file(args.probes)
    probe_items = _spread([_probe_item(p) for p in probes], args.max_probes, args.seed)
    return val_items + probe_items


def _check_adapter(run: RunInfo) -> RunInfo:
    if not (run.adapter_dir / "adapter_config.json").is_file():
        raise BonsaiError(
            f"run '{run.id}' has no adapter yet (it stopped before its first checkpoint)",
            file=run.folder,
            hint="`bonsai train --resume` continues it",
        )
    return run


def _models(
    garden: Garden, run: RunInfo, against: Sequence[str], keys: dict[str, str]
) -> list[_Model]:
    models = [
        _Model(keys.get(run.id, TUNED), f"run {run.id} ({run.layout} layout)", run, run.layout)
    ]
    wanted = list(against) or ([PARENT] if run.parent else []) + [BASE]
    for name in wanted:
        if name == BASE:
            models.append(
                _Model(BASE, f"base model {run.base_model}, no adapter", None, run.layout)
            )
            continue
        if name == PARENT:
            if not run.parent:
                raise BonsaiError(f"run '{run.id}' has no parent run", field="against")
            try:
                other = load_run(garden, run.parent)
            except BonsaiError:
                if against:
                    raise
                continue  # compared by default only: a parent whose folder is gone is skipped
            key = PARENT
        else:
            other = load_run(garden, name)
            key = keys.get(other.id) or (PARENT if other.id == run.parent else other.id)
        if other.base_model != run.base_model:
            raise BonsaiError(
                f"run '{other.id}' was trained from {other.base_model}, run '{run.id}' from "
                f"{run.base_model}: only runs of the same base model can be compared",
                field="against",
            )
        if key not in {m.key for m in models}:
            models.append(
                _Model(key, f"run {other.id} ({other.layout} layout)", other, other.layout)
            )
    return models


# -- the slow part ------------------------------------------------------------------------------


def _choice(model: _Model, tuned: RunInfo) -> Any:
    """What the generation engine loads for ``model``: a run, or the base model asked in the
    tuned run's layout (so that both get the same prompts)."""
    from bonsai.generate.loading import RunChoice

    if model.run is None:
        return RunChoice(id=BASE, base_model=tuned.base_model, layout=model.layout)
    return RunChoice(
        id=model.run.id,
        base_model=model.run.base_model,
        layout=model.layout,
        adapter_dir=model.run.adapter_dir,
        manifest=model.run.manifest,
    )


def _answers(
    model: _Model,
    tuned: RunInfo,
    items: Sequence[Item],
    args: EvalArgs,
    retriever: EvalRetriever,
    phases: Phases,
) -> list[Answer]:
    """``model``'s answers to ``items``, asked in a chat session (see :mod:`.asking`)."""
    session = open_eval_session(
        _choice(model, tuned), retriever, rag=args.rag, generate=generation_args(model.layout, args)
    )
    advance = phases.phase(f"answering · {model.key}", len(items))
    return ask_all(
        session,
        items,
        retriever,
        reasoning_expected=get_layout(model.layout).reasoning_first,
        advance=advance,
    )


def generation_args(layout: str, args: EvalArgs) -> GenerateArgs:
    """The engine's deterministic settings (greedy, with the loop controls chat uses), stopping
    where the layout says an answer ends; a layout whose model writes its reasoning first gets
    room for it."""
    from bonsai.generate import deterministic_args

    extra = REASONING_TOKENS if get_layout(layout).reasoning_first else 0
    return deterministic_args(
        max_new_tokens=args.max_new_tokens + extra, stop=get_layout(layout).stop
    )


def chat_summary(
    items: Sequence[Item], answers: ModelAnswers, args: EvalArgs, retriever: EvalRetriever
) -> dict[str, Any]:
    """How chat put the questions to the models: retrieval settings, how many prompts carried
    notes, and per category how often chat's guessed category was the item's."""
    from bonsai.chat.session import ChatArgs

    defaults = ChatArgs()
    guessed: dict[str, list[bool]] = defaultdict(list)
    with_notes = 0
    for item, answer in zip(items, answers.answers, strict=True):
        guessed[item.category].append(answer.chat.get("category") == item.category)
        with_notes += bool(answer.chat.get("notes"))
    return {
        "rag": args.rag,
        "k": defaults.k,
        "max_notes_chars": defaults.max_notes_chars,
        "focus": defaults.focus,
        "prompts_with_notes": with_notes,
        "own_record_left_out": len(retriever.left_out),
        "category_guessed": {c: sum(v) / len(v) for c, v in guessed.items()},
    }


def _losses(
    session: Any,
    model: _Model,
    records: Sequence[Record],
    split: str,
    phases: Phases,
    what: str,
) -> list[RecordLoss]:
    if not records:
        return []
    advance = phases.phase(f"{what} · {model.key}", len(records))
    with session.use(model.key):
        measured = session.losses(model.layout, records, advance=advance)
    return [
        RecordLoss(r.id, r.category, r.language, split, *measured[r.id])
        for r in records
        if r.id in measured
    ]


def _check_findings(records: Sequence[Record], phases: Phases) -> list[Any]:
    """Contradictions ``bonsai data check`` finds in the records (none if the check is absent)."""
    try:
        from bonsai.curate.check import check_records
    except ImportError:
        phases.note("the data check is not available: contradictions come from losses only")
        return []
    return list(check_records(list(records)).findings)


def _record_evaluation(garden: Garden, run: RunInfo, results: dict[str, Any], html: Path) -> None:
    """One row per evaluation in the garden's database (what `bonsai grow` and `runs` read)."""
    import json

    from bonsai.db import transaction

    try:
        with transaction(garden.db):
            garden.db.execute(
                "INSERT INTO evaluations (run_id, against, kind, report, summary, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    run.id,
                    ",".join(m["key"] for m in results["models"] if m["key"] != results["primary"]),
                    results["kind"],
                    str(html),
                    json.dumps(
                        {"summary": results["summary"], "deltas": results["deltas"]},
                        ensure_ascii=False,
                        default=str,
                    ),
                    time.time(),
                ),
            )
    except sqlite3.OperationalError:
        # An older garden without the evaluations table: the report files are what matters.
        pass


@dataclass
class Prepared:
    """What an evaluation works on, checked before any model loads."""

    run: RunInfo
    records: list[Record]
    """Every record of the run's dataset."""
    val_ids: set[str]
    """The records the run validated on."""
    items: list[Item]
    out_dir: Path


def prepare(garden: Garden, args: EvalArgs) -> Prepared:
    """Everything that can fail on bad input, before any model loads."""
    run = load_run(garden, args.run)
    val, records = _validation_records(garden, run)
    items = collect_items(val, args)
    out_dir = args.out or run.folder
    check_writable(out_dir)
    return Prepared(run, records, {r.id for r in val}, items, out_dir)


def evaluate(
    garden: Garden,
    args: EvalArgs,
    *,
    phases: Phases | None = None,
    kind: str = "evaluation",
    keys: dict[str, str] | None = None,
    title: str | None = None,
    headline_against: str | None = None,
    extra: dict[str, Any] | None = None,
) -> EvalOutcome:
    """Evaluate ``args.run`` against its parent and the base model (or ``args.against``).

    ``keys`` names models by run id (default: 'tuned' for the run, 'parent', or the run id);
    ``headline_against`` is the model the summary cards compare with (default: the base).
    """
    started = time.time()
    phases = phases or QuietPhases()
    prep = prepare(garden, args)
    run, records, items = prep.run, prep.records, prep.items
    models = _models(garden, run, args.against, keys or {})
    for model in models:
        if model.run is not None:
            _check_adapter(model.run)
    primary = models[0].key
    by_id = {r.id: r for r in records}
    val_records = [by_id[i.id] for i in items if i.source == "val"]
    phases.note(
        f"{sum(i.source == 'val' for i in items)} validation records and "
        f"{sum(i.source == 'probe' for i in items)} probes; models: "
        + ", ".join(m.key for m in models)
    )
    retriever = EvalRetriever(garden.db)
    answers: list[ModelAnswers] = []
    for model in models:
        answers.append(
            ModelAnswers(
                key=model.key,
                label=model.label,
                answers=_answers(model, run, items, args, retriever, phases),
                run_id=model.run.id if model.run else None,
                layout=model.layout,
            )
        )
    train_losses: list[RecordLoss] = []
    precision = None
    if args.losses:
        from bonsai.evaluate.engine import ModelSession

        session = ModelSession(run.base_model)
        precision = session.precision
        phases.note(f"losses in {session.precision} ({session.precision_why})")
        for model in models:
            if model.run is not None:
                session.add_adapter(model.key, model.run.adapter_dir)
        for model, model_answers in zip(models, answers, strict=True):
            model_answers.record_losses = _losses(
                session, model, val_records, "val", phases, "validation loss"
            )
        if args.outliers:
            # Records in unique categories that the tuned model still cannot fit after training
            # are the ones that disagree with others (creative records have no single answer).
            fit = [
                r for r in records if r.id not in prep.val_ids and r.category in UNIQUE_CATEGORIES
            ]
            train_losses = _losses(session, models[0], fit, "train", phases, "training loss")
        del session
    findings = _check_findings(records, phases)
    advance = phases.phase("writing the report", 1)
    results = build_results(
        items=items,
        models=answers,
        primary=primary,
        run=run.summary(),
        history=load_metrics(run.metrics_path),
        records=records,
        check_findings=findings,
        outlier_losses=train_losses + answers[0].record_losses,
        settings={
            "generation": {
                k: v
                for k, v in generation_args(run.layout, args).to_dict().items()
                if k not in ("temperature", "top_p", "seed")
            },
            "loss_precision": precision,
            "chat": chat_summary(items, answers[0], args, retriever),
            "probes": str(args.probes) if args.probes else None,
            "builtin_probes": args.builtin_probes,
        },
        kind=kind,
        title=title,
        headline_against=headline_against,
        bootstrap_samples=args.bootstrap_samples,
        seed=args.seed,
        started=started,
    )
    results.update(extra or {})
    against = results["headline_against"] or (answers[1].key if len(answers) > 1 else None)
    html, json_path = write_report(prep.out_dir, report_stem(kind, against), results)
    advance(1)
    _record_evaluation(garden, run, results, html)
    return EvalOutcome(
        html=html,
        json=json_path,
        results=results,
        verdict=verdict(results, against) if against else None,
    )
