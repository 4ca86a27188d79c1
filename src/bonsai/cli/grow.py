"""``bonsai grow``: chat feedback → new records → a new run → promoted if it is not worse."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from bonsai.cli.common import (
    GardenOption,
    console,
    default_of,
    given,
    open_garden,
    print_warning,
)
from bonsai.grow.args import GrowArgs, PromotionRule

if TYPE_CHECKING:
    from bonsai.garden import Garden
    from bonsai.grow.feedback_to_records import FeedbackPlan
    from bonsai.grow.pipeline import GrowResult
    from bonsai.grow.promote import Comparison, Decision


def grow_command(
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset",
            "-d",
            help="Dataset the new records join (default: the current run's dataset).",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Show what the feedback would become; write nothing."),
    ] = False,
    train: Annotated[
        bool,
        typer.Option(
            "--train/--no-train",
            help="Train, evaluate and maybe promote after making the records. With --no-train "
            "the records get their reasoning and wait; the next `bonsai grow` trains them.",
        ),
    ] = True,
    steps: Annotated[
        int | None,
        typer.Option(help="Optimizer steps of the new run.", min=1, show_default=False),
    ] = None,
    epochs: Annotated[
        float | None,
        typer.Option(help="Epochs of the new run (instead of --steps).", show_default=False),
    ] = None,
    experiences_as_records: Annotated[
        bool,
        typer.Option(
            "--experiences-as-records",
            help="Also make a record of each remembered experience (it always becomes a note).",
        ),
    ] = False,
    dismiss_reviews: Annotated[
        bool,
        typer.Option(
            "--dismiss-reviews",
            help="Drop the answers on the review list (rated bad, no better answer given) "
            "instead of keeping them pending.",
        ),
    ] = False,
    teach: Annotated[
        bool,
        typer.Option(
            "--teach/--no-teach",
            help="Have the teacher write the new records' reasoning (the teacher set in "
            "bonsai.toml; offline templates by default).",
        ),
    ] = True,
    max_val_loss_increase: Annotated[
        float | None,
        typer.Option(
            help="Promotion: largest relative rise of validation loss accepted (0.02 = 2%; "
            "negative asks for an improvement).",
            show_default=default_of(PromotionRule, "max_val_loss_increase"),
        ),
    ] = None,
    judge_creative: Annotated[
        bool,
        typer.Option(
            "--judge-creative",
            help="Promotion: a significant drop in a creative category blocks it too.",
        ),
    ] = False,
    eval_max_items: Annotated[
        int | None,
        typer.Option(
            help="Validation records answered in the comparison (losses use all).",
            show_default=default_of(GrowArgs, "eval_max_items"),
        ),
    ] = None,
    eval_max_probes: Annotated[
        int | None,
        typer.Option(
            help="Built-in probes answered in the comparison (0: none).",
            show_default=default_of(GrowArgs, "eval_max_probes"),
        ),
    ] = None,
    eval_max_new_tokens: Annotated[
        int | None,
        typer.Option(
            help="Longest answer in the comparison, in tokens.",
            min=1,
            show_default=default_of(GrowArgs, "eval_max_new_tokens"),
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            help="Seed of training and the bootstrap.", show_default=default_of(GrowArgs, "seed")
        ),
    ] = None,
    garden: GardenOption = None,
) -> None:
    """Turn chat feedback into the next round of your bonsai.

    A correction becomes a record (your question, your better answer;
    category and language annotated). A remembered experience becomes a
    note in notes/feedback/ (with --experiences-as-records also a record).
    An answer rated bad with no better one goes on a review list
    (exports/grow-review.md) and stays pending. The teacher writes the
    new records' reasoning; a new run continues the current adapter on
    the dataset and is evaluated against it on the same validation
    records and probes; it is promoted only if it is not worse. A grow
    that stops anywhere is continued by the next one.
    """
    from bonsai.grow.pipeline import Hooks, grow

    args = GrowArgs(
        dataset=dataset,
        dry_run=dry_run,
        train=train,
        steps=steps,
        epochs=epochs,
        experiences_as_records=experiences_as_records,
        dismiss_reviews=dismiss_reviews,
        teach=teach,
        **given(
            eval_max_items=eval_max_items,
            eval_max_probes=eval_max_probes,
            eval_max_new_tokens=eval_max_new_tokens,
            seed=seed,
        ),
        promotion=PromotionRule(
            judge_creative=judge_creative, **given(max_val_loss_increase=max_val_loss_increase)
        ),
    )
    g = open_garden(garden)
    hooks = Hooks(
        note=lambda message: console.print(f"  [dim]·[/] {escape(message)}"),
        console=console,
        planned=lambda result: _print_plan(result, args, g),
    )
    if train and not dry_run:
        from bonsai.evaluate.progress import RichPhases
        from bonsai.teach.progress import RichProgress

        hooks.teach_progress = RichProgress(console, description="reasoning")
        hooks.eval_phases = RichPhases(console)
    try:
        result = grow(g, args, hooks=hooks)
    finally:
        if hooks.eval_phases is not None:
            hooks.eval_phases.close()
    _print_outcome(result)
    if result.status == "interrupted":
        raise typer.Exit(130)


# -- output -------------------------------------------------------------------------------------


def _short(text: str, width: int = 56) -> str:
    text = " ".join(text.split())
    return escape(text if len(text) <= width else text[: width - 1] + "…")


def _print_plan(result: GrowResult, args: object, garden: Garden) -> None:
    plan = result.plan
    assert plan is not None
    from bonsai.grow.args import GrowArgs
    from bonsai.store import RecordStore

    assert isinstance(args, GrowArgs)
    where = f"dataset [bold]{escape(str(result.dataset))}[/]"
    if str(result.dataset) not in RecordStore(garden.db).dataset_names():
        known = ", ".join(RecordStore(garden.db).dataset_names()) or "none yet"
        verb = "would be" if args.dry_run else "is"
        where += f" [yellow](a new dataset: it {verb} created; the garden has {escape(known)})[/]"
    console.print(f"Growing from [bold]{escape(result.current_run)}[/] into {where}.")
    if plan.records:
        console.print(_records_table(plan))
    for note in plan.notes:
        console.print(f"  note: {escape(str(note.path))}")
    if plan.superseded:
        console.print(
            f"  {len(plan.superseded)} older correction(s) replaced by a newer one of the same "
            "turn: dismissed"
        )
    if plan.review:
        console.print(_review_table(plan))
        if result.review_file is not None:
            console.print(f"  review list: {escape(str(result.review_file))}")
    if plan.good:
        console.print(f"  {plan.good} good rating(s) kept pending")
    waiting = len(result.round.records) if result.round is not None else 0
    if result.round is not None and waiting and not plan.records:
        console.print(
            f"  {waiting} record(s) of round {escape(result.round.id)} wait for training."
        )
    if args.train and (plan.records or waiting):
        budget = (
            f"{args.steps} steps"
            if args.steps
            else f"{args.epochs:g} epochs"
            if args.epochs
            else "steps derived from the data"
        )
        source = "the base model" if result.current_run == "base" else result.current_run
        console.print(f"  training continues from {escape(source)} ({budget}).")
        console.print(f"  [dim]{escape(args.promotion.describe())}[/]")


def _records_table(plan: FeedbackPlan) -> Table:
    table = Table(title="New records from feedback", title_justify="left")
    for column in ("record", "from", "category", "language", "instruction → output"):
        table.add_column(column)
    for item in plan.records:
        r = item.record
        settled = f" (+{len(item.also_used)} bad)" if item.also_used else ""
        table.add_row(
            escape(r.id),
            f"{item.kind} {item.feedback_id}{settled}",
            escape(r.category or "?"),
            escape(r.language or "?"),
            f"{_short(r.instruction, 40)} → {_short(r.output, 40)}",
        )
    return table


def _review_table(plan: FeedbackPlan) -> Table:
    table = Table(title="To review (rated bad, no better answer)", title_justify="left")
    for column in ("feedback", "question", "answer", "reason"):
        table.add_column(column)
    for item in plan.review:
        table.add_row(
            str(item.feedback_id),
            _short(item.question or "(turn deleted)", 40),
            _short(item.answer, 40),
            _short(item.reason or item.why, 30),
        )
    return table


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _comparison_table(comparison: Comparison, decision: Decision) -> Table:
    table = Table(
        title=f"Before ({escape(comparison.before)}) and after ({escape(comparison.after)})",
        title_justify="left",
    )
    for column in ("category", "score", "before", "after", "Δ [95% CI]", "val loss", "verdict"):
        table.add_column(column)
    verdicts = {check.name: check for check in decision.checks}
    loss = verdicts.get("validation loss")
    table.add_row(
        "[bold]all[/]",
        "validation loss",
        _fmt(comparison.val_loss_before, 4),
        _fmt(comparison.val_loss_after, 4),
        "",
        "",
        _verdict(loss.passed if loss else None),
    )
    for score in comparison.categories:
        check = verdicts.get(score.category)
        interval = (
            f" [{score.low:+.3f}, {score.high:+.3f}]"
            if score.low is not None and score.high is not None
            else f" (n={score.n})"
        )
        delta = "–" if score.delta is None else f"{score.delta:+.3f}{interval}"
        losses = f"{_fmt(score.val_loss_before)} → {_fmt(score.val_loss_after)}"
        table.add_row(
            score.category,
            score.metric,
            _fmt(score.before),
            _fmt(score.after),
            escape(delta),
            losses,
            _verdict(check.passed if check else None),
        )
    return table


def _verdict(passed: bool | None) -> str:
    return {True: "[green]ok[/]", False: "[red]worse[/]", None: "[dim]not judged[/]"}[passed]


def _print_outcome(result: GrowResult) -> None:
    plan = result.plan
    if result.status == "nothing" and plan is not None and plan.review:
        console.print(_review_table(plan))
        if result.review_file is not None:
            console.print(f"  review list: {escape(str(result.review_file))}")
    if result.comparison is not None and result.decision is not None:
        console.print(_comparison_table(result.comparison, result.decision))
        console.print(f"[dim]{escape(result.decision.rule)}[/]")
        if result.report is not None:
            console.print(f"Report: {escape(str(result.report))}")
    for failure in result.teach_failed:
        print_warning(f"no reasoning for {failure}")
    style = {"promoted": "green", "kept": "yellow", "interrupted": "yellow"}.get(result.status)
    message = escape(result.message)
    console.print(f"[bold {style}]{message}[/]" if style else message)


def register(app: typer.Typer) -> None:
    app.command("grow")(grow_command)
