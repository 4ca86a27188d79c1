"""``bonsai logs``: the chat exchanges (terminal chat and server), with the feedback each got.

Each exchange takes three lines, so that any terminal width (80 columns too) shows the question
and the answer cut with an ellipsis at a character boundary, never a column of 4-character
slices of Japanese text.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer

from bonsai.cli.common import GardenOption, console, open_garden
from bonsai.util.text import fit, json_text, shown

if TYPE_CHECKING:
    from bonsai.chat.store import Feedback, TurnLog


def logs(
    garden: GardenOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print every field (prompt, notes, settings) as JSON.")
    ] = False,
    limit: Annotated[
        int, typer.Option("--limit", "-n", help="How many of the newest.", min=1)
    ] = 20,
    session: Annotated[
        str | None, typer.Option("--session", help="Only this chat session.", show_default=False)
    ] = None,
) -> None:
    """List chat exchanges, newest last, with the feedback each got."""
    from bonsai.chat import store

    g = open_garden(garden)
    turns = store.list_turns(g.db, limit=limit, session=session)
    feedback = store.feedback_for(g.db, [t.id for t in turns])
    if as_json:
        out = []
        for turn in turns:
            item = turn.to_dict()
            item["feedback"] = [f.to_dict() for f in feedback[turn.id]]
            out.append(item)
        typer.echo(json_text(out))
        return
    if not turns:
        console.print("No chat exchanges yet: `bonsai chat` or `bonsai serve` makes them.")
        return
    width = max(40, console.width)
    for turn in turns:
        for line in turn_lines(turn, feedback[turn.id], width):
            console.print(line, highlight=False, soft_wrap=True)


def turn_lines(turn: TurnLog, feedback: list[Feedback], width: int) -> list[str]:
    """An exchange in three lines of Rich markup, none wider than ``width`` cells."""
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(turn.created_at))
    mode = "q2q" if turn.mode == "question_to_question" else turn.mode
    notes = f"{len(turn.retrieved)} note{'s' if len(turn.retrieved) != 1 else ''}"
    marks = ", ".join(f.kind for f in feedback)
    status = "" if turn.status == "ok" else turn.status
    parts = [when, turn.id.removeprefix("chatcmpl-")[:10], mode, status, turn.run_id, notes, marks]
    head = " · ".join(part for part in parts if part)
    text = width - 5
    return [
        f"[bold]{shown(fit(head, width))}[/]",
        f"  [dim]Q[/]  {shown(fit(turn.prompt, text))}",
        f"  [dim]A[/]  {shown(fit(turn.answer, text) or '(no answer)')}",
    ]


def register(app: typer.Typer) -> None:
    app.command("logs")(logs)
