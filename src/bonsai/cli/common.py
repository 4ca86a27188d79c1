"""What every command shares: the console, the --garden option, error output."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import typer

from bonsai import env
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
        envvar=env.GARDEN.name,
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


def given(**flags: Any) -> dict[str, Any]:
    """The options a person gave: None means left out, so the stage's dataclass default holds
    (one source for every default; ``--help`` shows it with :func:`default_of`)."""
    return {name: value for name, value in flags.items() if value is not None}


def default_of(settings: type, name: str) -> str:
    """The default of the field ``name`` of the stage dataclass ``settings``, as ``--help``
    shows it (``show_default=default_of(ServeArgs, "port")``)."""
    for item in dataclasses.fields(settings):
        if item.name == name:
            return str(item.default)
    raise KeyError(f"{settings.__name__} has no field {name!r}")


def open_garden(path: Path | None) -> Garden:
    return Garden.open(path)


def print_error(message: str) -> None:
    """One error line; ``message`` is plain text (it often quotes the user's input)."""
    err_console.print(f"[bold red]error:[/] {shown(message)}", markup=True, soft_wrap=True)


def print_warning(message: str) -> None:
    """One warning line; ``message`` is plain text."""
    err_console.print(f"[yellow]warning:[/] {shown(message)}", markup=True, soft_wrap=True)
