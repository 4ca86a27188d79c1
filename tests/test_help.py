"""``--help`` reads well: an example under every command (one that parses), flags without a
type, bracketed text kept, no internal paths."""

from __future__ import annotations

import shlex

import pytest
import typer.main

from bonsai.cli import app
from bonsai.cli.help import EXAMPLES


def commands() -> dict[str, object]:
    """Every command and group, by its path after ``bonsai``."""
    found: dict[str, object] = {}

    def walk(command: object, path: list[str]) -> None:
        if path:
            found[" ".join(path)] = command
        for name, sub in (getattr(command, "commands", None) or {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return found


ALL = commands()


@pytest.mark.parametrize("path", sorted(ALL))
def test_every_command_has_an_example_and_no_bool_metavar(cli, path: str) -> None:
    result = cli(*path.split(), "--help")
    assert result.exit_code == 0, result.output
    assert f"Example: {EXAMPLES[path]}" in result.stdout
    assert "<bool>" not in result.stdout
    assert "../" not in result.stdout and "site-packages" not in result.stdout


@pytest.mark.parametrize("path", sorted(EXAMPLES))
def test_every_example_parses(path: str) -> None:
    words = shlex.split(EXAMPLES[path])
    assert words[0] == "bonsai"
    command, rest, name = typer.main.get_command(app), words[1:], "bonsai"
    while rest and rest[0] in (getattr(command, "commands", None) or {}):
        name, command = rest[0], command.commands[rest[0]]
        rest = rest[1:]
    assert " ".join(words[1:]).startswith(path), f"{EXAMPLES[path]} is not an example of {path}"
    command.make_context(name, rest)  # raises on an unknown option or a bad value


def test_bracketed_help_text_is_kept(cli) -> None:
    result = cli("chat", "--help")
    assert "pip install 'bonsai[llama]'" in result.stdout
    evaluated = cli("eval", "--help")
    assert "shared/data" not in evaluated.stdout
