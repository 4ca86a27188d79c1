"""``bonsai data annotate``: detect each record's language and suggest its category."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bonsai.cli.common import DatasetOption, GardenOption, console, err_console, open_garden
from bonsai.records import CATEGORIES


def annotate(
    dataset: DatasetOption = None,
    garden: GardenOption = None,
    only: Annotated[
        str | None,
        typer.Option(
            help="Annotate only 'language' or only 'category' (default: both).",
            show_default=False,
        ),
    ] = None,
    min_confidence: Annotated[
        float,
        typer.Option(
            "--min-confidence",
            min=0.0,
            max=1.0,
            help="Leave a record unlabelled when the suggested category is less sure than this.",
        ),
    ] = 0.0,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be set; write nothing.")
    ] = False,
    fast: Annotated[
        bool,
        typer.Option(
            "--fast",
            help="Faster language detection with less memory, less sure on texts of a few words.",
        ),
    ] = False,
) -> None:
    """Detect each record's language and suggest a category for records that have none.

    Languages are ISO 639-1 codes (ja, en, zh, ...); a translation record gets source-target,
    such as ja-en. Suggested categories are marked 'auto' with a confidence from 0 to 1, and a
    later run refreshes them. Labels a person gave (in the data or by editing) are never changed.
    The result is one change that `bonsai data undo` reverts.
    """
    from bonsai.curate.annotate import AnnotateArgs, annotate_dataset
    from bonsai.store import RecordStore

    args = AnnotateArgs(only=only, min_confidence=min_confidence, dry_run=dry_run, fast=fast)
    g = open_garden(garden)
    dataset = g.choose_dataset(dataset)
    store = RecordStore(g.db)
    store.dataset_id(dataset)  # an unknown dataset fails here, before any work
    with Progress(
        TextColumn("Annotating"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task("annotate", total=None)
        result = annotate_dataset(
            store,
            dataset,
            args,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )

    console.print(f"Dataset [bold]{escape(dataset)}[/]: {result.records:,} records")
    if args.languages:
        table = Table(box=None, pad_edge=False, header_style="bold")
        table.add_column("language")
        table.add_column("records", justify="right")
        for language, count in result.languages.most_common():
            name = "undetected" if language == "?" else language
            table.add_row(escape(name), f"{count:,}")
        console.print(table)
        console.print(
            f"  detected now: {result.languages_detected:,}; "
            f"set by a person and kept: {result.human_languages_kept:,}"
        )
    if args.categories:
        table = Table(box=None, pad_edge=False, header_style="bold")
        table.add_column("suggested category")
        table.add_column("records", justify="right")
        table.add_column("mean confidence", justify="right")
        table.add_column("below --min-confidence", justify="right")
        for category in CATEGORIES:
            confidences = result.suggested.get(category, [])
            below = result.below_confidence.get(category, 0)
            if not confidences and not below:
                continue
            mean = f"{sum(confidences) / len(confidences):.2f}" if confidences else "-"
            table.add_row(category, f"{len(confidences):,}", mean, f"{below:,}")
        console.print(table)
        console.print(f"  categories set by a person and kept: {result.human_categories_kept:,}")
    console.print(f"  left for a person to label (no category): {result.unlabelled:,}")

    if dry_run:
        console.print(f"Dry run: {result.changed:,} records would change; nothing was written.")
    elif result.changeset is None:
        console.print("Nothing changed.")
    else:
        console.print(
            f"Changed {result.changed:,} records, recorded as change #{result.changeset}"
            f" (`bonsai data undo --dataset {escape(dataset)}` reverts it)."
        )


def register(app: typer.Typer) -> None:
    app.command()(annotate)
