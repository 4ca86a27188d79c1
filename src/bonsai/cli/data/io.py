"""``bonsai data import|export|history|undo|list|show``: records in and out of a garden."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from bonsai.cli.common import DatasetOption, GardenOption, console, open_garden
from bonsai.curate.formats import DEFAULT_MAX_FIELD_CHARS, EXPORT_FORMATS, IMPORT_FORMATS
from bonsai.records import EDITABLE_FIELDS, Record
from bonsai.store import RecordStore


def import_(
    file: Annotated[
        Path,
        typer.Argument(
            help="File to import, or a folder saved by `datasets`.",
            show_default=False,
            metavar="FILE",
        ),
    ],
    dataset: DatasetOption = None,
    garden: GardenOption = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            help=f"One of: {', '.join(IMPORT_FORMATS)}. Default: from the name and content.",
            show_default=False,
            metavar="FORMAT",
        ),
    ] = None,
    mapping: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            "-m",
            help="Rename a source column, SOURCE=FIELD (repeatable): --map prompt=instruction.",
            show_default=False,
            metavar="SOURCE=FIELD",
        ),
    ] = None,
    delete_absent: Annotated[
        bool,
        typer.Option(
            "--delete-absent", help="Delete records of the dataset that the file does not have."
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would change; write nothing.")
    ] = False,
    split: Annotated[
        str | None,
        typer.Option(
            help="Split of a Hugging Face DatasetDict folder (default: train).", show_default=False
        ),
    ] = None,
    max_field_chars: Annotated[
        int, typer.Option(help="Refuse values longer than this many characters.")
    ] = DEFAULT_MAX_FIELD_CHARS,
) -> None:
    """Import records: Alpaca, JSONL, Dolly, ShareGPT, CSV, Excel, Parquet, HF datasets.

    Formats: Alpaca JSON, JSONL, Dolly, ShareGPT/messages, self-instruct seed tasks, CSV, Excel
    (.xlsx), Parquet, or a saved Hugging Face `datasets` folder; detected from the file, or
    --format.

    Re-importing matches records by id: the report counts added, changed, unchanged and absent
    records. Fields the file does not have are left as they are. It is one undoable change.
    """
    from bonsai.curate.importer import ImportArgs, parse_mapping, run_import

    g = open_garden(garden)
    dataset = g.choose_dataset(dataset)
    args = ImportArgs(
        file,
        dataset,
        fmt=fmt,
        mapping=parse_mapping(mapping or []),
        delete_absent=delete_absent,
        dry_run=dry_run,
        split=split,
        max_field_chars=max_field_chars,
    )
    with console.status(f"Reading {file.name} …"):
        report = run_import(g, args)

    verb = "Would import" if report.dry_run else "Imported"
    console.print(
        f"{verb} [bold]{escape(file.name)}[/] ({report.format}, {report.records:,} records)"
        f" into dataset [bold]{escape(dataset)}[/]"
    )
    for note in report.notes:
        console.print(f"  note: {escape(note)}")
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    table.add_column("records")
    table.add_column("count", justify="right")
    table.add_row("added", f"{report.added:,}")
    table.add_row("changed", f"{report.changed:,}")
    table.add_row("unchanged", f"{report.unchanged:,}")
    absent = "deleted" if delete_absent else "kept; --delete-absent removes them"
    table.add_row(f"absent from file ({absent})", f"{report.absent:,}")
    console.print(table)
    if report.changed_fields:
        console.print("Changed fields:")
        for record_id, names in report.changed_fields.items():
            console.print(f"  {escape(record_id)}: {escape(', '.join(names))}")
        more = report.changed - len(report.changed_fields)
        if more > 0:
            console.print(f"  … and {more:,} more")
    if report.dry_run:
        console.print("Dry run: nothing was written.")
    elif report.changeset_id is None:
        console.print("Nothing changed.")
    else:
        console.print(
            f"Recorded as change #{report.changeset_id}"
            f" (`bonsai data undo --dataset {escape(dataset)}` reverts it)."
        )


def export(
    dataset: DatasetOption = None,
    garden: GardenOption = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            help=f"One of: {', '.join(EXPORT_FORMATS)}. Default: from the --out suffix.",
            show_default=False,
            metavar="FORMAT",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="File to write (default: exports/DATASET.SUFFIX in the garden).",
            show_default=False,
        ),
    ] = None,
    split: Annotated[
        str | None, typer.Option(help="Only this split: train or val.", show_default=False)
    ] = None,
    shard: Annotated[int | None, typer.Option(help="Only this shard.", show_default=False)] = None,
) -> None:
    """Export a dataset, with record ids, so that an edited copy can be imported again.

    xlsx is made for editing by hand in Excel or LibreOffice: texts stay texts, the category
    column has a drop-down, and re-importing changes only what was edited.
    """
    from bonsai.curate.exporter import ExportArgs, run_export

    g = open_garden(garden)
    dataset = g.choose_dataset(dataset)
    args = ExportArgs(dataset, fmt, out, split, shard)
    with console.status(f"Writing {args.fmt} …"):
        path, count = run_export(g, args)
    console.print(
        f"Exported {count:,} records of [bold]{escape(dataset)}[/] to {escape(str(path))}"
    )


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def history(
    dataset: DatasetOption = None,
    garden: GardenOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the changes made to a dataset, oldest first."""
    g = open_garden(garden)
    dataset = g.choose_dataset(dataset)
    store = RecordStore(g.db)
    changes = store.history(dataset)
    if as_json:
        rows = [
            {
                "id": c.id,
                "created_at": c.created_at,
                "kind": c.kind,
                "description": c.description,
                "records": c.records,
                "summary": c.summary,
                "undone_by": c.undone_by,
            }
            for c in changes
        ]
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not changes:
        console.print(f"No changes yet in dataset [bold]{escape(dataset)}[/].")
        return
    table = Table(header_style="bold")
    for name in ("#", "when", "kind", "description", "records", "counts", "undone"):
        table.add_column(name, justify="right" if name in ("#", "records") else "left")
    for c in changes:
        counts = ", ".join(
            f"{k} {v:,}" for k, v in c.summary.items() if isinstance(v, int) and v and k != "undoes"
        )
        table.add_row(
            str(c.id),
            _when(c.created_at),
            c.kind,
            Text(c.description),
            f"{c.records:,}",
            counts,
            f"by #{c.undone_by}" if c.undone_by else "",
        )
    console.print(table)


def undo(
    dataset: DatasetOption = None,
    change_id: Annotated[
        int | None,
        typer.Argument(help="Change to undo (default: the latest not undone).", show_default=False),
    ] = None,
    garden: GardenOption = None,
) -> None:
    """Undo a change of a dataset (itself recorded as a change)."""
    g = open_garden(garden)
    dataset = g.choose_dataset(dataset)
    store = RecordStore(g.db)
    undo_id = store.undo(dataset, change_id)
    (undone,) = [c for c in store.history(dataset) if c.undone_by == undo_id]
    console.print(
        f"Undid change #{undone.id} ({escape(undone.description)}): {undone.records:,} records"
        f" restored. Recorded as change #{undo_id}."
    )


def list_(garden: GardenOption = None) -> None:
    """List the garden's datasets with their record counts."""
    store = RecordStore(open_garden(garden).db)
    names = store.dataset_names()
    if not names:
        console.print("No datasets yet: `bonsai data import FILE --dataset NAME` creates one.")
        return
    table = Table(header_style="bold")
    for name in ("dataset", "records", "categorised", "with reasoning", "train", "val", "changes"):
        table.add_column(name, justify="left" if name == "dataset" else "right")
    for name in names:
        records = store.records(name)
        changes = store.history(name)
        table.add_row(
            Text(name),
            f"{len(records):,}",
            f"{sum(r.category is not None for r in records):,}",
            f"{sum(bool(r.reasoning) for r in records):,}",
            f"{sum(r.split == 'train' for r in records):,}",
            f"{sum(r.split == 'val' for r in records):,}",
            f"{len(changes):,}",
        )
    console.print(table)


def _record_table(record: Record) -> Table:
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    table.add_row("id", Text(record.id))
    for name in EDITABLE_FIELDS:
        value = getattr(record, name)
        if name == "category" and record.category_source:
            confidence = record.category_confidence
            value = f"{value} ({record.category_source}" + (
                f", {confidence:.2f})" if confidence is not None else ")"
            )
        elif name == "language" and record.language_source:
            value = f"{value} ({record.language_source})"
        table.add_row(name, Text("" if value is None else str(value)))
    if record.split or record.shard is not None:
        table.add_row("split", Text(f"{record.split or '-'} / shard {record.shard}"))
    if record.reasoning_meta:
        table.add_row("reasoning by", Text(json.dumps(record.reasoning_meta, ensure_ascii=False)))
    for key, value in record.extra.items():
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        table.add_row(f"extra.{key}", Text(text))
    return table


def show(
    dataset: DatasetOption = None,
    record_id: Annotated[
        str | None, typer.Argument(help="Show only this record.", show_default=False)
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many records to show.")] = 10,
    garden: GardenOption = None,
) -> None:
    """Print records of a dataset: one in full, or the first few as a table."""
    from bonsai.errors import BonsaiError

    g = open_garden(garden)
    dataset = g.choose_dataset(dataset)
    store = RecordStore(g.db)
    if record_id is not None:
        record = store.get(dataset, record_id)
        if record is None:
            raise BonsaiError(f"no record '{record_id}' in dataset '{dataset}'")
        console.print(_record_table(record))
        return
    records = store.records(dataset)
    table = Table(header_style="bold", show_lines=True)
    table.add_column("id", no_wrap=True)
    table.add_column("category")
    table.add_column("lang")
    table.add_column("instruction", ratio=2, overflow="fold")
    table.add_column("input", ratio=1, overflow="fold")
    table.add_column("output", ratio=2, overflow="fold")

    def cut(text: str, size: int = 200) -> Text:
        return Text(text if len(text) <= size else text[: size - 1] + "…")

    for record in records[: max(limit, 0)]:
        table.add_row(
            Text(record.id),
            record.category or "",
            record.language or "",
            cut(record.instruction),
            cut(record.input, 120),
            cut(record.output),
        )
    console.print(table)
    shown = min(len(records), max(limit, 0))
    console.print(f"{shown:,} of {len(records):,} records (--limit shows more).")


def register(app: typer.Typer) -> None:
    app.command("import")(import_)
    app.command("export")(export)
    app.command("history")(history)
    app.command("undo")(undo)
    app.command("list")(list_)
    app.command("show")(show)
