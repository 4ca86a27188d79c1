"""``bonsai chat`` (talk to the student in the terminal) and ``bonsai logs`` (the exchanges)."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer

from bonsai.cli.common import GardenOption, console, err_console, open_garden

RunOption = Annotated[
    str | None,
    typer.Option(
        "--run",
        "-r",
        help="Run to chat with: a run id, 'latest', or 'base' (default: the promoted run, else "
        "the newest finished one, else the base model).",
        show_default=False,
    ),
]


PrecisionOption = Annotated[
    str,
    typer.Option(
        "--precision",
        help="'int8': weight-only int8 layers, about 1.4x faster (next-token choice agrees with "
        "bf16 ~99% of the time); 'bf16': the model's own weights.",
    ),
]


EngineOption = Annotated[
    str,
    typer.Option(
        "--engine",
        help="'transformers', or 'llama': llama.cpp on the run's GGUF (`bonsai merge RUN --gguf`; "
        "needs `pip install 'bonsai[llama]'`).",
    ),
]


def chat(
    garden: GardenOption = None,
    run: RunOption = None,
    mode: Annotated[
        str, typer.Option("--mode", "-m", help="'answer', or 'q2q': reply with sharper questions.")
    ] = "answer",
    no_rag: Annotated[
        bool, typer.Option("--no-rag", help="Do not retrieve from your notes and records.")
    ] = False,
    once: Annotated[
        str | None,
        typer.Option(
            "--once", help="Ask this one question, print the answer and exit.", show_default=False
        ),
    ] = None,
    max_tokens: Annotated[
        int, typer.Option("--max-tokens", help="Most tokens in an answer.", min=1)
    ] = 256,
    temperature: Annotated[
        float, typer.Option("--temperature", "-t", help="0 answers greedily.", min=0.0)
    ] = 0.7,
    deterministic: Annotated[
        bool, typer.Option("--deterministic", help="Greedy and reproducible (as evaluation does).")
    ] = False,
    precision: PrecisionOption = "int8",
    engine: EngineOption = "transformers",
) -> None:
    """Chat with your bonsai: answers stream in, with the notes they were given.

    After an answer: /good, /bad REASON, /correct, /remember TEXT, /mode q2q, /sources, /quit.
    Everything is logged in the garden (see `bonsai logs`).
    Feedback feeds the next `bonsai grow`.
    """
    from bonsai.chat import ChatArgs
    from bonsai.chat.repl import Repl
    from bonsai.chat.session import open_session
    from bonsai.generate import GenerateArgs

    g = open_garden(garden)
    args = ChatArgs(
        mode=mode,
        rag=not no_rag,
        generate=GenerateArgs(
            max_new_tokens=max_tokens, temperature=temperature, deterministic=deterministic
        ),
    )
    with err_console.status("Loading the student…"):
        session = open_session(g, run, args=args, client="chat", precision=precision, engine=engine)
    if once is None:
        from bonsai.curate.language import default_detector

        # The statistical language model takes seconds to load: let it load while the user types.
        default_detector().prefetch()
    repl = Repl(session, console, _reader())
    if once is not None:
        turn = repl.ask(once, stream=console.is_terminal)
        if turn is not None:
            console.print(f"[dim]turn {turn.id}[/]", highlight=False)
        raise typer.Exit(0 if turn is not None else 2)
    repl.run()


def _reader():
    def read(prompt: str) -> str | None:
        try:
            return console.input(f"[bold]{prompt}[/]")
        except (EOFError, KeyboardInterrupt):
            console.print()
            return None

    return read


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
    from rich.table import Table

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
        console.print_json(json.dumps(out, ensure_ascii=False))
        return
    if not turns:
        console.print("No chat exchanges yet: `bonsai chat` or `bonsai serve` makes them.")
        return
    table = Table(show_lines=False)
    for column in ("when", "turn", "mode", "run", "question", "answer", "notes", "feedback"):
        table.add_column(column, overflow="fold")
    for turn in turns:
        marks = ", ".join(f.kind for f in feedback[turn.id]) or "-"
        table.add_row(
            time.strftime("%Y-%m-%d %H:%M", time.localtime(turn.created_at)),
            turn.id.removeprefix("chatcmpl-")[:10],
            "q2q" if turn.mode == "question_to_question" else turn.mode,
            turn.run_id,
            _short(turn.prompt),
            _short(turn.answer) + ("" if turn.status == "ok" else f" [{turn.status}]"),
            str(len(turn.retrieved)),
            marks,
        )
    console.print(table)


def _short(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def register(app: typer.Typer) -> None:
    app.command("chat")(chat)
    app.command("logs")(logs)
