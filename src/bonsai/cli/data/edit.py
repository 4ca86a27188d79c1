"""``bonsai data edit|rm ID``: fix single records without an export round trip."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from bonsai.cli.common import DatasetOption, GardenOption, console, open_garden
from bonsai.store import RecordStore


def edit(
    record_id: Annotated[
        str, typer.Argument(help="Id of the record to edit.", show_default=False, metavar="ID")
    ],
    dataset: DatasetOption = None,
    garden: GardenOption = None,
) -> None:
    """Edit a record in your editor ($VISUAL or $EDITOR), as JSON.

    Saved changes are checked like an import and recorded as one change that `bonsai data undo`
    reverts. Leaving the file as it was (or empty) changes nothing.
    """
    from bonsai.curate.edit import edit_record

    g = open_garden(garden)
    dataset = g.choose_dataset(dataset)
    result = edit_record(RecordStore(g.db), dataset, record_id)
    if result.changeset_id is None:
        console.print(f"No changes to [bold]{escape(record_id)}[/].")
        return
    console.print(
        f"Edited [bold]{escape(record_id)}[/] ({escape(', '.join(result.fields))}). Recorded as"
        f" change #{result.changeset_id} (`bonsai data undo --dataset {escape(dataset)}` reverts"
        " it)."
    )


def rm(
    record_ids: Annotated[
        list[str],
        typer.Argument(help="Ids of the records to remove.", show_default=False, metavar="ID"),
    ],
    dataset: DatasetOption = None,
    garden: GardenOption = None,
) -> None:
    """Remove records from a dataset, as one change that `bonsai data undo` reverts."""
    from bonsai.curate.edit import remove_records

    g = open_garden(garden)
    dataset = g.choose_dataset(dataset)
    changeset = remove_records(RecordStore(g.db), dataset, record_ids)
    console.print(
        f"Removed {len(set(record_ids)):,} record(s) from [bold]{escape(dataset)}[/]. Recorded as"
        f" change #{changeset} (`bonsai data undo --dataset {escape(dataset)}` reverts it)."
    )


def register(app: typer.Typer) -> None:
    app.command("edit")(edit)
    app.command("rm")(rm)
