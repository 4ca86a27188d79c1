"""``bonsai demo``: the whole loop on the bundled sample garden, from nothing to a report.

Every stage is called as a library function (no subprocesses), in the order a user would run
them: init → import → annotate → check → split → teach → notes → train → evaluate. The demo
garden is a plain garden: afterwards ``bonsai chat --garden demo-garden`` talks to the result.

**Re-running recreates the demo garden.** A demo garden carries a marker file
(:data:`MARKER`); running the demo again on a folder with that marker deletes it and starts from
nothing, so that the demo always shows the same, complete loop. A folder that exists, is not
empty and has no marker is never touched: the demo refuses, naming it.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from bonsai import __version__
from bonsai.errors import BonsaiError
from bonsai.garden import Garden

MARKER = ".bonsai-demo"
"""The file that marks a folder as a demo garden, which the demo may delete and recreate."""
DATASET = "cat-care"
DEFAULT_GARDEN = Path("demo-garden")


@dataclass
class Budget:
    """How much work each slow stage does: the knobs the quick and full demo differ in."""

    max_steps: int | None
    """Training steps (None: ``epochs`` decides)."""
    epochs: float | None
    """Training epochs when ``max_steps`` is None."""
    eval_items: int | None
    """Validation records answered per model (None: all)."""
    eval_probes: int
    """Built-in probes answered per model."""
    max_new_tokens: int
    """Longest answer, in tokens, in the evaluation."""
    losses: bool = True
    """Validation loss per record and category, for every model."""
    outliers: bool = True
    """The tuned model's loss on every training record of a unique category (the loss-outlier
    contradiction check)."""
    batch_tokens: int | None = None
    """Tokens per optimizer step (None: derived by the train stage)."""
    eval_every: int | None = None
    """Validation loss every this many steps (None: derived, about ten times a run)."""


# Measured here (2 cores): Gemma 3 270M trains with LoRA at about 280 tokens/s (bf16) and answers
# at 40-60 tokens/s. With notes in the prompts, an epoch of the sample is about 136,000 training
# tokens (300 steps of up to 640 tokens; packed, a step holds about 455).
QUICK = Budget(
    max_steps=24,
    epochs=None,
    eval_items=7,
    eval_probes=4,
    max_new_tokens=64,
    outliers=False,
    batch_tokens=640,
    eval_every=8,
)
"""About 4 minutes on a 2-core CPU: 24 small steps (about 15,000 tokens), one validation record
per category, a few probes."""
FULL = Budget(
    max_steps=180,
    epochs=None,
    eval_items=None,
    eval_probes=12,
    max_new_tokens=96,
    outliers=True,
    batch_tokens=640,
    eval_every=60,
)
"""About 12 minutes on a 2-core CPU: 180 steps of up to 640 tokens from the nursery stock
(about 83,000 tokens, 60% of an epoch), validation loss three times, the whole validation split,
probes, and the loss-outlier check over every training record. A first `make demo` from a fresh
clone, setup and the student's conversion included, took 13.1 minutes here; a whole epoch (300
steps, ten validations) took 17.7 minutes for the demo alone."""


@dataclass
class DemoArgs:
    """What ``bonsai demo`` does."""

    garden: Path = DEFAULT_GARDEN
    """Folder of the demo garden (recreated if it is a demo garden already)."""
    quick: bool = False
    """The quick budget (about 4 minutes here) instead of the full one (about 12)."""
    base_model: str | None = None
    """Student to fine-tune (default: the garden's, i.e. the embedded Gemma 3 270M). Tests pass
    a tiny model folder."""
    budget: Budget | None = None
    """Overrides the quick/full budget (tests use a tiny one)."""
    notes: bool = True
    """Add the sample notes to the knowledge base, for chat."""
    seed: int = 0
    threads: int | None = None
    """CPU threads for torch (None: the cores available, as training derives it)."""

    def __post_init__(self) -> None:
        self.garden = Path(self.garden)
        if self.budget is None:
            self.budget = QUICK if self.quick else FULL


@dataclass
class DemoResult:
    garden: Path
    run_id: str | None = None
    report: Path | None = None
    report_json: Path | None = None
    contradictions: list[list[str]] = field(default_factory=list)
    """Record ids of each contradiction the check found."""
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds per stage."""


# -- the garden ---------------------------------------------------------------------------------


def prepare_garden(path: Path, console: Console) -> Garden:
    """A fresh demo garden at ``path``; an old demo garden there is replaced, anything else
    refused."""
    path = path.expanduser().resolve()
    if path.exists():
        if not path.is_dir():
            raise BonsaiError("exists and is not a folder; pick another --garden", file=path)
        if (path / MARKER).is_file():
            console.print(f"  replacing the previous demo garden at {escape(str(path))}")
            shutil.rmtree(path)
        elif any(path.iterdir()):
            raise BonsaiError(
                "refusing to use a folder that is not empty and not a demo garden",
                file=path,
                hint="pass --garden NEW_FOLDER (the demo deletes and recreates its own garden)",
            )
    # The marker goes first: a demo stopped at any point leaves a folder the next run may replace.
    path.mkdir(parents=True, exist_ok=True)
    (path / MARKER).write_text(
        json.dumps({"created_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "bonsai": __version__})
        + "\n",
        encoding="utf-8",
    )
    return Garden.init(path, name="bonsai-demo")


# -- the stages ---------------------------------------------------------------------------------


class _Stages:
    """Prints one numbered line per stage with its time, and keeps the timings."""

    def __init__(self, console: Console, total: int) -> None:
        self.console = console
        self.total = total
        self.number = 0
        self.timings: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str, what: str) -> Iterator[None]:
        self.number += 1
        self.console.print(f"[bold green]{self.number}/{self.total}[/] [bold]{name}[/] · {what}")
        started = time.perf_counter()
        yield
        self.timings[name] = time.perf_counter() - started
        self.console.print(f"    [dim]done in {self.timings[name]:.1f} s[/]")


def _import(garden: Garden, console: Console) -> None:
    from bonsai.curate.importer import import_file
    from bonsai.sample import records_path

    report = import_file(garden, records_path(), DATASET)
    counts = report.counts()
    console.print(f"    {counts.get('added', counts)} records from {records_path().name}")


def _annotate(garden: Garden, console: Console) -> None:
    from bonsai.curate.annotate import AnnotateArgs, annotate_dataset
    from bonsai.store import RecordStore

    result = annotate_dataset(RecordStore(garden.db), DATASET, AnnotateArgs())
    console.print(
        f"    {result.records} records: {result.changed} changed, "
        f"{result.human_categories_kept} categories given by a person kept"
    )


def _check(garden: Garden, console: Console) -> list[list[str]]:
    from bonsai.curate.check import check_records
    from bonsai.store import RecordStore

    records = RecordStore(garden.db).records(DATASET)
    report = check_records(records, dataset=DATASET)
    by_id = {r.id: r for r in records}
    found = []
    for finding in report.contradictions:
        found.append(list(finding.record_ids))
        console.print(f"    [yellow]contradiction[/] {escape(', '.join(finding.record_ids))}:")
        for record_id in finding.record_ids:
            record = by_id.get(record_id)
            if record:
                said = escape(record.output[:70])
                console.print(f"      {record_id}  {escape(record.instruction)} → {said}")
    others = {
        code: n["findings"] for code, n in report.by_code().items() if code != "contradiction"
    }
    if others:
        console.print("    also: " + ", ".join(f"{n} {code}" for code, n in others.items()))
    console.print("    (kept on purpose: the report lists it under suspected contradictions)")
    return found


def _split(garden: Garden, console: Console, seed: int) -> None:
    from bonsai.curate.split import SplitArgs, split_dataset
    from bonsai.store import RecordStore

    result = split_dataset(RecordStore(garden.db), DATASET, SplitArgs(val=0.1, seed=seed))
    sizes = {part: sum(c.values()) for part, c in result.counts.items()}
    console.print("    " + ", ".join(f"{part}: {n}" for part, n in sizes.items()))


def _teach(garden: Garden, console: Console) -> None:
    from bonsai.teach.args import TeachArgs
    from bonsai.teach.backends import make_teacher
    from bonsai.teach.progress import RichProgress
    from bonsai.teach.runner import teach

    args = TeachArgs.from_config(garden.config.teacher, DATASET, only_missing=True)
    teacher = make_teacher(args, garden.config)
    what = "offline template backend" if args.backend == "template" else f"{args.backend} teacher"
    console.print(f"    records without a reasoning get one from the {what}")
    summary = teach(garden, args, teacher, progress=RichProgress(console))
    console.print(f"    {summary.written} reasonings written, {summary.skipped} kept as they were")
    if summary.aborted:
        raise BonsaiError(f"the teacher stopped: {summary.aborted}", hint=summary.abort_hint)


def _train(garden: Garden, args: DemoArgs, console: Console) -> str:
    from bonsai.train.args import TrainArgs
    from bonsai.train.loop import train

    budget = args.budget
    assert budget is not None
    settings: dict[str, Any] = {"dataset": DATASET, "seed": args.seed}
    if budget.max_steps is not None:
        settings["max_steps"] = budget.max_steps
    else:
        settings["epochs"] = budget.epochs
    if args.base_model:
        settings["base_model"] = args.base_model
    if args.threads:
        settings["threads"] = args.threads
    for name in ("batch_tokens", "eval_every"):
        if getattr(budget, name) is not None:
            settings[name] = getattr(budget, name)
    run = train(garden, TrainArgs(**settings), console=console)
    if run is None or run.status != "finished":
        status = run.status if run is not None else "not started"
        raise BonsaiError(
            f"training did not finish ({status})",
            hint="`bonsai train --resume --garden DEMO_GARDEN` continues it",
        )
    return run.id


def _evaluate(garden: Garden, args: DemoArgs, run_id: str, console: Console) -> Any:
    from bonsai.evaluate.args import EvalArgs
    from bonsai.evaluate.progress import RichPhases
    from bonsai.evaluate.runner import evaluate

    budget = args.budget
    assert budget is not None
    eval_args = EvalArgs(
        run=run_id,
        against=[],  # the parent (the nursery stock) and the base model
        max_items=budget.eval_items,
        max_probes=budget.eval_probes,
        max_new_tokens=budget.max_new_tokens,
        losses=budget.losses,
        outliers=budget.outliers,
        seed=args.seed,
    )
    phases = RichPhases(console)
    try:
        return evaluate(garden, eval_args, phases=phases)
    finally:
        phases.close()


def _notes(garden: Garden, console: Console) -> None:
    from bonsai.rag.notes import add_paths
    from bonsai.sample import notes_dir

    report = add_paths(garden, [notes_dir()])
    console.print(f"    {len(report.added)} notes, {report.chunks} chunks in the knowledge base")


def _has_rag() -> bool:
    try:
        import bonsai.rag.notes  # noqa: F401
    except ImportError:
        return False
    return True


# -- the whole demo -----------------------------------------------------------------------------


def run_demo(args: DemoArgs, console: Console | None = None) -> DemoResult:
    """Run the demo; returns where everything went. Raises :class:`BonsaiError` on a problem."""
    console = console or Console()
    budget = args.budget
    assert budget is not None
    notes = args.notes and _has_rag()
    stages = _Stages(console, 8 + int(notes))
    started = time.perf_counter()
    with stages.stage("init", "a fresh demo garden"):
        garden = prepare_garden(args.garden, console)
        if args.base_model:
            # Kept in the garden's config, so that chat and serve use the same student.
            garden.config.student.base_model = args.base_model
            garden.config.save(garden.config_path)
        console.print(f"    {escape(str(garden.root))}")
    result = DemoResult(garden=garden.root)
    try:
        with stages.stage("import", "the sample: 230 cat-care records in en/ja/zh"):
            _import(garden, console)
        with stages.stage("annotate", "language and category of every record"):
            _annotate(garden, console)
        with stages.stage("check", "contradictions, duplicates, missing reasoning"):
            result.contradictions = _check(garden, console)
        with stages.stage("split", "10% for validation, stratified by category and language"):
            _split(garden, console, args.seed)
        with stages.stage("teach", "a reasoning for every record"):
            _teach(garden, console)
        if notes:
            # Before training: training prompts carry notes as chat gives them.
            with stages.stage("notes", "the sample notes into the knowledge base"):
                _notes(garden, console)
        steps = (
            f"{budget.max_steps} steps"
            if budget.max_steps is not None
            else f"{budget.epochs:g} epochs"
        )
        student = args.base_model or garden.config.student.base_model
        with stages.stage("train", f"LoRA on {student}, from the nursery stock, {steps}"):
            result.run_id = _train(garden, args, console)
        with stages.stage("evaluate", f"run {result.run_id} against its parent and the base"):
            outcome = _evaluate(garden, args, result.run_id, console)
            result.report, result.report_json = outcome.html, outcome.json
    finally:
        garden.close()
    result.timings = {**stages.timings, "total": time.perf_counter() - started}
    console.print(f"[bold green]Demo finished in {result.timings['total'] / 60:.1f} min.[/]")
    _next_steps(garden, result, console)
    return result


def _next_steps(garden: Garden, result: DemoResult, console: Console) -> None:
    where = escape(str(garden.root))
    console.print(f"    report:  [bold]{escape(str(result.report))}[/] (open it in a browser)")
    console.print(f"    chat:    [bold]bonsai chat --garden {where}[/]")
    console.print(f"    runs:    bonsai runs --garden {where}")
    console.print(f"    again:   bonsai eval {escape(result.run_id or 'latest')} --garden {where}")
