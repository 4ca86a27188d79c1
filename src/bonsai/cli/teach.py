"""``bonsai teach``: a teacher writes the reasoning of every record (the teach stage)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from bonsai.cli.common import GardenOption, console, open_garden, print_warning
from bonsai.errors import BonsaiError
from bonsai.util.text import redact_url

if TYPE_CHECKING:
    from bonsai.garden import Garden
    from bonsai.teach.args import TeachArgs
    from bonsai.teach.backends import Teacher
    from bonsai.teach.runner import Plan, TeachSummary

FAILURES_SHOWN = 20


def teach(
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset",
            "-d",
            help="Name of the dataset in the garden (default: default_dataset in bonsai.toml, or"
            " the garden's only dataset).",
            show_default=False,
        ),
    ] = None,
    garden: GardenOption = None,
    backend: Annotated[
        str | None,
        typer.Option(
            help="openai (any OpenAI-compatible endpoint), local (a model on this machine) or "
            "template (offline, not an LLM). Default: \\[teacher] in bonsai.toml, else template.",
            show_default=False,
        ),
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            help="Endpoint, e.g. http://localhost:11434/v1 (Ollama), http://localhost:8000/v1 "
            "(vLLM), https://api.groq.com/openai/v1. Implies --backend openai.",
            show_default=False,
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="Model the endpoint serves; for local, a model folder (default: the student).",
            show_default=False,
        ),
    ] = None,
    api_key_env: Annotated[
        str | None,
        typer.Option(
            help="Environment variable holding the API key (default: OPENAI_API_KEY if set).",
            show_default=False,
        ),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option("--concurrency", "-c", help="Requests in flight at once.", show_default=False),
    ] = None,
    only_missing: Annotated[
        bool,
        typer.Option("--only-missing", help="Teach only records without a reasoning yet."),
    ] = False,
    limit: Annotated[
        int | None,
        typer.Option(help="Teach at most this many records (the first ones).", show_default=False),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Print the prompts of a few records; send and write nothing."
        ),
    ] = False,
    rpm: Annotated[
        float | None,
        typer.Option(
            "--rpm", help="Most requests per minute (a hosted free tier).", show_default=False
        ),
    ] = None,
    max_attempts: Annotated[
        int | None,
        typer.Option(
            help="Answers asked per record when they fail validation (default 3).",
            show_default=False,
        ),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(help="Seconds to wait for one answer (default 120).", show_default=False),
    ] = None,
    language_policy: Annotated[
        str | None,
        typer.Option(
            help="en: reasoning in English; record: in each record's own language.",
            show_default=False,
        ),
    ] = None,
    init_templates: Annotated[
        bool,
        typer.Option(
            "--init-templates",
            help="Copy the default prompt templates into the garden's templates/ folder to edit.",
        ),
    ] = False,
) -> None:
    """Have a teacher write the reasoning of each record: how to get from instruction to output.

    Prompts: one template per category (templates/CATEGORY.j2 in the garden,
    else the default). Answers: validated (at most 5 lines and 120 words,
    "You should …" or "Creator should …", not a copy of the output, in the
    right language), cached by content, written as one undoable change.
    A stopped run resumes where it was: nothing done is asked again.
    """
    from bonsai.teach.args import TeachArgs
    from bonsai.teach.backends import make_teacher
    from bonsai.teach.runner import plan_run

    g = open_garden(garden)
    if init_templates:
        _init_templates(g.templates_dir)
        if dataset is None:
            return
    dataset = g.choose_dataset(dataset)
    args = TeachArgs.from_config(
        g.config.teacher,
        dataset,
        backend=backend,
        base_url=base_url,
        model=model,
        api_key_env=api_key_env,
        concurrency=concurrency,
        only_missing=only_missing or None,
        limit=limit,
        dry_run=dry_run or None,
        requests_per_minute=rpm,
        max_attempts=max_attempts,
        timeout=timeout,
        language_policy=language_policy,
    )
    from_file = g.config.teacher.backend != "template" and backend is None and base_url is None
    configured = from_file or backend is not None or base_url is not None
    teacher = make_teacher(args, g.config)
    _say_teacher(args, teacher, configured=configured, from_file=from_file)
    plan = plan_run(g, args, teacher)
    if args.dry_run:
        _dry_run(plan, shown=args.limit or 3)
        return
    _run(g, args, teacher, plan)


def _init_templates(folder: Path) -> None:
    from bonsai.teach.templates import init_templates

    written = init_templates(folder)
    for path in written:
        console.print(f"  wrote {escape(str(path))}")
    kept = "" if written else " (all were there already; nothing overwritten)"
    console.print(
        f"Templates are in {escape(str(folder))}{kept}. Edit them; delete one to use the default."
    )


def _say_teacher(args: TeachArgs, teacher: Teacher, *, configured: bool, from_file: bool) -> None:
    if teacher.backend == "template":
        if not configured:
            console.print(
                "No teacher configured: using the offline [bold]template[/] backend "
                "(reasoning composed from rules, not written by a language model).\n"
                "  For a model: --backend openai --base-url URL --model NAME, or \\[teacher] in "
                "bonsai.toml.",
            )
        else:
            console.print(
                "Teacher: [bold]template[/] (offline; composed from rules, not a language model)"
            )
        return
    where = redact_url(getattr(teacher, "base_url", None))
    at = f" at {escape(where)}" if where else ""
    console.print(
        f"Teacher: [bold]{teacher.backend}[/] · model [bold]{escape(teacher.model)}[/]{at}"
        f" · concurrency {args.concurrency} · reasoning in "
        f"{'English' if args.language_policy == 'en' else 'the record language'}"
        + (" (teacher from bonsai.toml)" if from_file else "")
    )


def _dry_run(plan: Plan, *, shown: int) -> None:
    hits = len(plan.jobs) - len(plan.misses)
    console.print(
        f"Would teach {len(plan.jobs):,} records of [bold]{escape(plan.dataset)}[/]:"
        f" {len(plan.misses):,} requests, {hits:,} from the cache"
        + (f", {plan.skipped:,} skipped (already have a reasoning)" if plan.skipped else "")
    )
    for job in plan.jobs[:shown]:
        console.rule(
            f"{escape(job.record.id)} · {job.template.name} ({job.template.origin})"
            + (" · cached" if job.key in plan.hits else "")
        )
        console.print(escape(job.prompt), soft_wrap=True)
    console.rule()
    console.print("Dry run: nothing sent, nothing written.")


def _run(g: Garden, args: TeachArgs, teacher: Teacher, plan: Plan) -> None:
    import asyncio

    from bonsai.teach.progress import RichProgress
    from bonsai.teach.runner import TeachRun

    misses = len(plan.misses)
    replaced = [
        job.record
        for job in plan.jobs
        if (job.record.reasoning or "").strip() and job.key not in plan.hits
    ]
    if replaced:
        by_person = sum(1 for r in replaced if not (r.reasoning_meta or {}).get("written_by"))
        print_warning(
            f"{len(replaced):,} records already have a reasoning ({by_person:,} not written by a"
            " teacher) and will get a new one; --only-missing keeps them, and undo restores them"
        )
    console.print(
        f"Teaching {len(plan.jobs):,} records of [bold]{escape(args.dataset)}[/]:"
        f" {misses:,} to ask, {len(plan.jobs) - misses:,} cached"
        + (f", {plan.skipped:,} skipped (already have a reasoning)" if plan.skipped else "")
    )

    async def main() -> TeachSummary:
        try:
            run = TeachRun(g, args, teacher, progress=RichProgress(console))
            return await run.run(plan)
        finally:
            await teacher.aclose()

    try:
        summary = asyncio.run(main())
    except KeyboardInterrupt:
        print_warning(
            "interrupted: every answer finished so far is saved; run the same command to go on"
        )
        raise typer.Exit(130) from None
    _print_summary(summary)
    if summary.aborted:
        raise BonsaiError(summary.aborted, hint=summary.abort_hint)
    if summary.failed:
        raise typer.Exit(1)


def _print_summary(s: TeachSummary) -> None:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column()
    table.add_column(justify="right")
    rate = s.done / s.elapsed_s if s.elapsed_s > 0 else 0.0
    rows = [
        ("taught now", f"{s.done:,}"),
        ("from cache", f"{s.cached:,}"),
        ("failed", f"{len(s.failed):,}"),
    ]
    if s.skipped:
        rows.append(("skipped (had a reasoning)", f"{s.skipped:,}"))
    if s.not_reached:
        rows.append(("not reached", f"{s.not_reached:,}"))
    rows += [
        ("requests", f"{s.requests:,}"),
        ("tokens (prompt + answer)", f"{s.prompt_tokens:,} + {s.completion_tokens:,}"),
        ("time", f"{s.elapsed_s:.1f} s ({rate:.1f} records/s)"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    if s.changed_meanwhile:
        print_warning(
            f"{s.changed_meanwhile} records were edited during the run and kept as they are"
        )
    if s.failed:
        console.print(f"[red]Failed records ({len(s.failed)}):[/]")
        for failure in s.failed[:FAILURES_SHOWN]:
            console.print(
                f"  {escape(failure.record_id)}: {escape(failure.reason)}"
                f" ({failure.attempts} attempt{'s' if failure.attempts != 1 else ''})"
            )
        if len(s.failed) > FAILURES_SHOWN:
            console.print(
                f"  … and {len(s.failed) - FAILURES_SHOWN} more (see {escape(str(s.manifest))})"
            )
        console.print(
            "Run the same command again to retry them; finished records are not asked again."
        )
    if s.changeset is not None:
        console.print(
            f"Wrote {s.written:,} reasonings as change #{s.changeset}"
            f" (`bonsai data undo --dataset {escape(s.dataset)}` reverts it)."
        )
    elif not s.aborted:
        console.print("Nothing changed: every record already had this reasoning.")
    console.print(f"Run log: {escape(str(s.manifest))}")


def register(app: typer.Typer) -> None:
    app.command()(teach)
