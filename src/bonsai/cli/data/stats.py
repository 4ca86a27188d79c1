"""``bonsai data stats``: records per category x language, token lengths, and a PNG of both."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from bonsai.cli.common import DatasetOption, GardenOption, console, err_console, open_garden

if TYPE_CHECKING:
    from bonsai.curate.stats import DatasetStats


def stats(
    dataset: DatasetOption = None,
    garden: GardenOption = None,
    png: Annotated[
        Path | None,
        typer.Option(
            "--png",
            help="Where to write the picture (default: exports/<dataset>-stats.png in the garden).",
            show_default=False,
        ),
    ] = None,
    no_tokens: Annotated[
        bool,
        typer.Option(
            "--no-tokens", help="Skip token lengths (no need to load the student's tokenizer)."
        ),
    ] = False,
) -> None:
    """Show records per category x language and token lengths, and draw both into a PNG.

    Lengths are per category (min, median, 90th percentile, max) in the student's tokenizer.
    """
    from bonsai.curate.stats import compute_stats, write_png
    from bonsai.store import RecordStore

    g = open_garden(garden)
    dataset = g.choose_dataset(dataset)
    records = RecordStore(g.db).records(dataset)
    count_tokens = None
    model = g.config.student.base_model
    if not no_tokens and records:
        from bonsai.curate.tokens import token_counter

        with err_console.status(f"Loading the student's tokenizer ({escape(model)})…"):
            count_tokens = token_counter(model)
    with err_console.status(f"Counting {len(records):,} records…"):
        result = compute_stats(records, count_tokens)

    console.print(f"Dataset [bold]{escape(dataset)}[/]: {result.records:,} records")
    if not records:
        return
    console.print(_counts_table(result))
    if result.parts:
        parts = ", ".join(f"{escape(k)} {v:,}" for k, v in result.parts.items())
        console.print(f"Split: {parts}")
    if result.tokens:
        console.print(
            f"\n[bold]Tokens per record[/] ({escape(model)}; instruction, input, output and"
            " reasoning together):"
        )
        console.print(_lengths_table(result))

    path = png or g.exports_dir / f"{_file_safe(dataset)}-stats.png"
    if png is not None:
        from bonsai.garden import check_output_path

        check_output_path(png)
    with err_console.status("Drawing…"):
        write_png(result, path, f"{dataset}: {result.records:,} records")
    console.print(f"\nPicture: {escape(str(path))}")


def _file_safe(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name).strip("._") or "dataset"


def _counts_table(result: DatasetStats) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("category")
    for language in result.languages:
        table.add_column(escape(language), justify="right")
    table.add_column("total", justify="right", style="bold")
    for category in result.categories:
        row = [result.counts[category].get(lang, 0) for lang in result.languages]
        table.add_row(escape(category), *(f"{n:,}" if n else "·" for n in row), f"{sum(row):,}")
    totals = [sum(result.counts[c].get(lang, 0) for c in result.categories)
              for lang in result.languages]  # fmt: skip
    table.add_row("total", *(f"{n:,}" for n in totals), f"{result.records:,}", style="bold")
    return table


def _lengths_table(result: DatasetStats) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("category")
    for name in ("records", "min", "median", "p90", "max"):
        table.add_column(name, justify="right")
    for category, s in result.lengths().items():
        table.add_row(
            escape(category),
            f"{s.records:,}",
            f"{s.min:,}",
            f"{s.median:,.0f}",
            f"{s.p90:,.0f}",
            f"{s.max:,}",
            style="bold" if category == "all" else None,
        )
    return table


def register(app: typer.Typer) -> None:
    app.command()(stats)
