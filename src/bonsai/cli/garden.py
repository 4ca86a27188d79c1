"""``bonsai init``: create a garden."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bonsai.cli.common import console
from bonsai.garden import Garden


def init(
    path: Annotated[Path, typer.Argument(help="Folder for the new garden.")] = Path("."),
    name: Annotated[
        str | None, typer.Option(help="Garden name (default: the folder name).")
    ] = None,
) -> None:
    """Create a garden: bonsai.toml, garden.db and folders for runs, notes and exports."""
    garden = Garden.init(path, name=name)
    console.print(f"Created a garden in [bold]{garden.root}[/]")
    console.print(
        "  config    bonsai.toml\n  database  garden.db\n  folders   runs/ notes/ exports/"
    )
    console.print("Next: [bold]bonsai data import FILE --dataset NAME[/]")


def register(app: typer.Typer) -> None:
    app.command()(init)
