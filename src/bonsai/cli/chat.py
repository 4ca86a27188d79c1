"""``bonsai chat``: talk to the student in the terminal (``bonsai logs`` lists the exchanges)."""

from __future__ import annotations

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
        "needs `pip install 'bonsai\\[llama]'`).",
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


def register(app: typer.Typer) -> None:
    app.command("chat")(chat)
