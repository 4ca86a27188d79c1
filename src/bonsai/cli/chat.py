"""``bonsai chat``: talk to the student in the terminal (``bonsai logs`` lists the exchanges)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from bonsai.cli.common import GardenOption, console, default_of, err_console, given, open_garden
from bonsai.generate.args import GenerateArgs

if TYPE_CHECKING:
    from bonsai.chat import ChatArgs, ChatSession
    from bonsai.garden import Garden
    from bonsai.generate.engine import Generator

FOCUS_DEFAULT = "3"
"""``ChatArgs.focus`` as ``--help`` shows it, written out: the chat stage is not imported for
``--help`` (a test holds the two equal)."""

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
            "--once",
            help="Ask this one question and exit: the answer alone goes to stdout; reasoning, "
            "sources and the turn id go to stderr.",
            show_default=False,
        ),
    ] = None,
    max_tokens: Annotated[
        int | None,
        typer.Option(
            "--max-tokens",
            help="Most tokens in an answer.",
            min=1,
            show_default=default_of(GenerateArgs, "max_new_tokens"),
        ),
    ] = None,
    temperature: Annotated[
        float | None,
        typer.Option(
            "--temperature",
            "-t",
            help="0 answers greedily.",
            min=0.0,
            show_default=default_of(GenerateArgs, "temperature"),
        ),
    ] = None,
    context_weight: Annotated[
        float | None,
        typer.Option(
            "--context-weight",
            help="How much an answer from your notes or a given text leans on them over what the "
            "model would say without them (context-aware decoding); 0 turns it off.",
            min=0.0,
            max=2.0,
            show_default=default_of(GenerateArgs, "context_weight"),
        ),
    ] = None,
    focus: Annotated[
        int | None,
        typer.Option(
            "--focus",
            help="For a question answered from your notes, show the model only this many lines "
            "of each note section, those closest to the question; 0 shows sections whole.",
            min=0,
            max=50,
            show_default=FOCUS_DEFAULT,
        ),
    ] = None,
    deterministic: Annotated[
        bool, typer.Option("--deterministic", help="Greedy and reproducible (as evaluation does).")
    ] = False,
    precision: PrecisionOption = "int8",
    engine: EngineOption = "transformers",
) -> None:
    """Chat with your bonsai: answers stream in, with the notes they were given.

    After an answer: /good, /bad REASON, /correct, /remember TEXT, /mode q2q, /sources, /quit
    (/help says what each is for). Ctrl-C stops an answer.
    Everything is logged in the garden (see `bonsai logs`).
    Feedback feeds the next `bonsai grow`.
    """
    from bonsai.chat import ChatArgs

    g = open_garden(garden)
    args = ChatArgs(
        mode=mode,
        rag=not no_rag,
        **given(focus=focus),
        generate=GenerateArgs(
            deterministic=deterministic,
            **given(
                max_new_tokens=max_tokens, temperature=temperature, context_weight=context_weight
            ),
        ),
    )
    try:
        if once is not None:
            raise typer.Exit(_chat_once(g, run, args, once, precision=precision, engine=engine))
        _chat_interactive(g, run, args, precision=precision, engine=engine)
    except KeyboardInterrupt:  # Ctrl-C while the student was loading
        err_console.print("Interrupted.")
        raise typer.Exit(130) from None


def _session(
    garden: Garden,
    run: str | None,
    args: ChatArgs,
    *,
    precision: str,
    engine: str,
    background: bool,
) -> ChatSession:
    """A chat session on the run; with ``background``, its engine loads while the user types
    (the embedded model is converted first, in the foreground, if it never was)."""
    from bonsai.chat.session import ChatSession, warm_up
    from bonsai.generate.loading import BackgroundGenerator, check_engine, choose_run, load_engine
    from bonsai.student import resolve_base_model

    choice = choose_run(garden, run)
    layout = check_engine(choice, engine, precision)
    loaded: Generator
    if background:
        resolve_base_model(choice.base_model)  # converts the embedded model on first use
        loaded = BackgroundGenerator(
            choice.id,
            lambda: load_engine(choice, engine=engine, precision=precision),
            then=warm_up(garden.db, rag=args.rag),
        )
    else:
        with err_console.status(f"Loading {choice.describe()}…"):
            loaded = load_engine(choice, engine=engine, precision=precision)
    return ChatSession(
        garden.db,
        loaded,
        layout,
        run_id=choice.id,
        base_model=choice.base_model,
        args=args,
        client="chat",
    )


def _chat_interactive(
    garden: Garden, run: str | None, args: ChatArgs, *, precision: str, engine: str
) -> None:
    from bonsai.chat.repl import Repl

    session = _session(garden, run, args, precision=precision, engine=engine, background=True)
    Repl(session, console, _read, garden_root=garden.root).run()


def _chat_once(
    garden: Garden, run: str | None, args: ChatArgs, question: str, *, precision: str, engine: str
) -> int:
    """Answer one question: the answer on stdout, the rest on stderr. The exit code: 0, 2 when
    it failed, 130 when Ctrl-C stopped it."""
    from bonsai.chat.repl import Repl

    session = _session(garden, run, args, precision=precision, engine=engine, background=False)
    repl = Repl(session, console, _read, notices=err_console, garden_root=garden.root)
    turn = repl.ask(question, stream=console.is_terminal)
    if turn is None:
        return 2
    err_console.print(f"turn {turn.id}", style="dim", highlight=False)
    return 130 if turn.generation.finish_reason == "cancelled" else 0


def _read(prompt: str) -> str | None:
    """A line from the keyboard; None at end of input (Ctrl-D). Ctrl-C raises KeyboardInterrupt."""
    try:
        return console.input(f"[bold]{escape(prompt)}[/]")
    except EOFError:
        console.print()
        return None


def register(app: typer.Typer) -> None:
    app.command("chat")(chat)
