"""The ``bonsai`` command line. It only parses and dispatches: each stage lives in its own module.

Command groups are registered from ``bonsai.cli.<group>`` modules, one per stage.
"""

from __future__ import annotations

import sqlite3
import sys

import typer

from bonsai import __version__
from bonsai.cli import data as data_cli
from bonsai.cli import garden as garden_cli
from bonsai.cli.common import console, print_error
from bonsai.cli.help import add_examples, show_flags_as_flags
from bonsai.errors import BonsaiError

app = typer.Typer(
    name="bonsai",
    help=(
        "Cultivate a small LLM of your own.\n\n"
        "The loop: curate records (bonsai data) → a teacher writes their reasoning "
        "(bonsai teach) → fine-tune the student with LoRA (bonsai train) → chat with it "
        "over your notes (bonsai chat) → turn feedback into the next round (bonsai grow)."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        console.print(f"bonsai {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Cultivate a small LLM of your own."""


garden_cli.register(app)
app.add_typer(data_cli.app, name="data")


def _register_groups() -> None:
    """One module per stage; each adds its commands."""
    import importlib

    for name in (
        "teach",
        "train",
        "nursery",
        "notes",
        "chat",
        "logs",
        "serve",
        "ui",
        "grow",
        "evaluate",
        "demo",
    ):
        importlib.import_module(f"bonsai.cli.{name}").register(app)


_register_groups()
show_flags_as_flags()
add_examples(app)


def main(argv: list[str] | None = None) -> None:
    """Entry point: runs a command; a user-facing error becomes one line and a non-zero exit."""
    try:
        app(args=argv, prog_name="bonsai")
    except BonsaiError as exc:
        print_error(str(exc))
        sys.exit(exc.exit_code)
    except sqlite3.DatabaseError as exc:  # busy or damaged, met outside a transaction
        from bonsai.db.connection import database_error

        error = database_error(exc)
        if error is None:
            raise
        print_error(str(error))
        sys.exit(error.exit_code)


if __name__ == "__main__":
    main()
