"""``bonsai demo``: the whole loop on the bundled sample garden, in one command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bonsai.cli.common import console


def demo(
    quick: Annotated[
        bool,
        typer.Option(
            "--quick", help="A shorter training and a smaller evaluation (about 4 minutes here)."
        ),
    ] = False,
    garden: Annotated[
        Path,
        typer.Option(
            "--garden",
            "-g",
            help="Folder for the demo garden. A demo garden there is recreated; any other "
            "non-empty folder is refused.",
        ),
    ] = Path("demo-garden"),
    base_model: Annotated[
        str | None,
        typer.Option(
            "--base-model",
            help="Student to fine-tune instead of the embedded Gemma 3 270M.",
            show_default=False,
            hidden=True,
        ),
    ] = None,
    notes: Annotated[
        bool,
        typer.Option("--notes/--no-notes", help="Add the sample notes to the knowledge base."),
    ] = True,
) -> None:
    """Run the whole loop on the bundled sample garden, from nothing to a report.

    Creates a demo garden, imports 230 cat-care records (en/ja/zh), annotates
    and checks them (showing the planted contradiction), splits off 10% for
    validation, has the teacher write missing reasoning (the offline template
    backend unless a teacher is configured), fine-tunes the embedded Gemma 3
    270M with LoRA, evaluates it against the base model, and adds the sample
    notes to the knowledge base. Then it prints where the report is and how
    to chat. About 12 minutes on a 2-core CPU; --quick takes about 4.
    """
    from bonsai.demo import DemoArgs, run_demo

    run_demo(DemoArgs(garden=garden, quick=quick, base_model=base_model, notes=notes), console)


def register(app: typer.Typer) -> None:
    app.command()(demo)
