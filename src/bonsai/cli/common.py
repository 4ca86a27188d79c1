"""What every command shares: the console, the --garden option, error output."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bonsai.garden import Garden
from bonsai.util.text import SafeConsole, shown

# Every string printed through these shows control characters as \xNN (see SafeConsole);
# markup in user text is escaped where it is printed, with bonsai.util.text.shown.
console = SafeConsole(highlight=False)
err_console = SafeConsole(stderr=True, highlight=False)

GardenOption = Annotated[
    Path | None,
    typer.Option(
        "--garden",
        "-g",
        envvar="BONSAI_GARDEN",
        help="Garden folder (default: the current folder or the nearest one above it).",
        show_default=False,
    ),
]

DatasetOption = Annotated[
    str | None,
    typer.Option(
        "--dataset",
        "-d",
        help="Name of the dataset in the garden (default: default_dataset in bonsai.toml, or the"
        " garden's only dataset).",
        show_default=False,
    ),
]


def open_garden(path: Path | None) -> Garden:
    return Garden.open(path)


def print_error(message: str) -> None:
    """One error line; ``message`` is plain text (it often quotes the user's input)."""
    err_console.print(f"[bold red]error:[/] {shown(message)}", markup=True, soft_wrap=True)


def print_warning(message: str) -> None:
    """One warning line; ``message`` is plain text."""
    err_console.print(f"[yellow]warning:[/] {shown(message)}", markup=True, soft_wrap=True)
