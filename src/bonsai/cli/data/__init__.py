"""``bonsai data …``: the curate stage (import, annotate, check, split, stats, export, history)."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    help="Curate datasets: import, show, edit, rm, annotate, check, split, stats, export,"
    " history, undo.",
    no_args_is_help=True,
)

# One module per command family; each has register(app).
for _name in ("io", "edit", "annotate", "check", "split", "stats"):
    try:
        _module = importlib.import_module(f"bonsai.cli.data.{_name}")
    except ModuleNotFoundError as _exc:
        if _exc.name != f"bonsai.cli.data.{_name}":
            raise
        continue
    _module.register(app)
