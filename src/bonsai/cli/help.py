"""How ``--help`` reads: an example under every command, and flags shown as flags.

The examples live here, in one table, rather than in each command's module: a test parses every
one of them with the real command line, so an example cannot drift from the options it shows.
"""

from __future__ import annotations

from typing import Any

import typer

EXAMPLES: dict[str, str] = {
    "init": "bonsai init my-garden",
    "teach": "bonsai teach -d cats --base-url http://localhost:11434/v1 --model qwen2.5:7b",
    "train": "bonsai train -d cats --max-steps 200",
    "merge": "bonsai merge latest --gguf",
    "chat": "bonsai chat --once 'What does Mochi eat?'",
    "logs": "bonsai logs -n 5 --session serve",
    "serve": "bonsai serve --port 8000 --api-key-env BONSAI_API_KEY",
    "grow": "bonsai grow -d cats --dry-run",
    "eval": "bonsai eval latest --against base",
    "demo": "bonsai demo --quick",
    "data": "bonsai data import cats.csv -d cats",
    "data import": "bonsai data import cats.csv -d cats --dry-run",
    "data export": "bonsai data export -d cats -f xlsx -o cats.xlsx",
    "data history": "bonsai data history -d cats",
    "data undo": "bonsai data undo -d cats",
    "data list": "bonsai data list",
    "data show": "bonsai data show -d cats -n 5",
    "data annotate": "bonsai data annotate -d cats --dry-run",
    "data check": "bonsai data check -d cats --limit 0",
    "data split": "bonsai data split -d cats --val 0.1",
    "data stats": "bonsai data stats -d cats",
    "runs": "bonsai runs latest",
    "runs show": "bonsai runs show latest",
    "notes": "bonsai notes add ~/notes",
    "notes add": "bonsai notes add ~/notes README.md",
    "notes search": "bonsai notes search 'how often does Mochi eat'",
    "notes list": "bonsai notes list --json",
    "notes remove": "bonsai notes remove ~/notes/old.md",
    "notes embed": "bonsai notes embed",
    "data edit": "bonsai data edit cat-0002 -d cats",
    "data rm": "bonsai data rm cat-0002 cat-0003 -d cats",
    "nursery": "bonsai nursery show",
    "nursery build": "bonsai nursery build --data ~/open-data --work /tmp/nursery",
    "nursery show": "bonsai nursery show",
    "ui": "bonsai ui --open",
}
"""Command path (as typed after ``bonsai``) → one command line that uses it."""


def epilog(path: str) -> str | None:
    example = EXAMPLES.get(path)
    return f"Example: {example}" if example else None


def add_examples(app: typer.Typer, prefix: str = "") -> None:
    """Give every registered command (and group) of ``app`` its example, unless it has one."""
    for info in app.registered_commands:
        name = info.name or _command_name(info.callback)
        _set_epilog(info, f"{prefix}{name}")
    for group in app.registered_groups:
        sub = group.typer_instance
        path = f"{prefix}{group.name}"
        if sub is None:
            continue
        if sub.registered_callback is not None:
            _set_epilog(sub.registered_callback, path)
        else:
            _set_epilog(sub.info, path)
        add_examples(sub, f"{path} ")


def _set_epilog(info: Any, path: str) -> None:
    if not getattr(info, "epilog", None):
        info.epilog = epilog(path)


def _command_name(callback: Any) -> str:
    return callback.__name__.lower().replace("_", "-").strip("-")


def show_flags_as_flags() -> None:
    """typer (0.2x) prints a type after every option in --help, ``<bool>`` after a flag too, as
    if it took a value; a flag (``--dry-run``, ``--help``) shows no type here."""
    from typer.core import TyperOption

    if getattr(TyperOption.display_type_rich, "_bonsai", False):
        return
    original = TyperOption.display_type_rich

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        if self.is_flag or self.count:
            return None
        return original(self, ctx)

    display_type_rich._bonsai = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]
