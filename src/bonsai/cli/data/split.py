"""``bonsai data split``: a validation split and shards, stratified by category and language."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from bonsai.cli.common import DatasetOption, GardenOption, console, open_garden
from bonsai.records import CATEGORIES

if TYPE_CHECKING:
    from bonsai.curate.split import SplitResult


def split(
    dataset: DatasetOption = None,
    garden: GardenOption = None,
    val: Annotated[
        float | None,
        typer.Option(
            "--val",
            help="Fraction of records for validation, e.g. 0.1.",
            show_default=False,
        ),
    ] = None,
    shards: Annotated[
        int | None,
        typer.Option(
            "--shards", help="Deal the training records into N shards.", show_default=False
        ),
    ] = None,
    shard_size: Annotated[
        int | None,
        typer.Option(
            "--shard-size",
            help="Make as many shards as needed for none to hold more than N records.",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="The same seed gives the same split.")] = 0,
) -> None:
    """Split a dataset into train and validation records, and/or into shards.

    Both are stratified: every category x language group gives about FRACTION of its records
    to validation (every category of two or more records gets at least one), and every shard
    holds its share of every group. With --val and --shards together, the training records are
    sharded and validation records belong to no shard. Shards are numbered from 0 and differ in
    size by at most one record.

    The split depends only on the seed and the records (not their order). Each run replaces the
    previous split and shards of every record, as one change that `bonsai data undo` reverts.
    """
    from bonsai.curate.split import SplitArgs, split_dataset
    from bonsai.store import RecordStore

    args = SplitArgs(val=val, shards=shards, shard_size=shard_size, seed=seed)
    g = open_garden(garden)
    dataset = g.choose_dataset(dataset)
    result = split_dataset(RecordStore(g.db), dataset, args)
    console.print(
        f"Split [bold]{escape(dataset)}[/] ({len(result.records):,} records, seed {seed}):"
    )
    console.print(counts_table(result))
    if result.changeset is None:
        console.print("Nothing changed: the records were already split this way.")
    else:
        console.print(
            f"Recorded as change #{result.changeset}"
            f" (`bonsai data undo --dataset {escape(dataset)}` reverts it)."
        )


def counts_table(result: SplitResult) -> Table:
    """Records per part (train/val/shards) and category, with totals."""
    from bonsai.curate.split import part_order

    parts = sorted(result.counts, key=part_order)
    categories = [c for c in (*CATEGORIES, "-") if any(c in result.counts[p] for p in parts)]
    categories += sorted({c for p in parts for c in result.counts[p]} - set(categories))
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("category")
    for part in parts:
        table.add_column(part, justify="right")
    table.add_column("total", justify="right", style="bold")
    for category in categories:
        row = [result.counts[p].get(category, 0) for p in parts]
        table.add_row(escape(category), *(f"{n:,}" for n in row), f"{sum(row):,}")
    totals = [sum(result.counts[p].values()) for p in parts]
    table.add_row("total", *(f"{n:,}" for n in totals), f"{sum(totals):,}", style="bold")
    return table


def register(app: typer.Typer) -> None:
    app.command()(split)
