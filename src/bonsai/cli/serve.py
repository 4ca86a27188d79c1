"""``bonsai serve``: an OpenAI-compatible API for your bonsai, on this machine by default."""

from __future__ import annotations

from typing import Annotated

import typer

from bonsai.cli.chat import EngineOption, PrecisionOption
from bonsai.cli.common import (
    GardenOption,
    console,
    default_of,
    err_console,
    given,
    open_garden,
    print_warning,
)
from bonsai.serve.args import ServeArgs


def serve(
    garden: GardenOption = None,
    port: Annotated[
        int | None,
        typer.Option(
            "--port", "-p", help="Port to listen on.", show_default=default_of(ServeArgs, "port")
        ),
    ] = None,
    host: Annotated[
        str,
        typer.Option(
            "--host", help="Address to listen on (127.0.0.1: only this machine can connect)."
        ),
    ] = "127.0.0.1",
    run: Annotated[
        str | None,
        typer.Option(
            "--run",
            "-r",
            help="Run to serve: a run id, 'latest' or 'base' (default: the promoted run, else "
            "the newest finished one, else the base model).",
            show_default=False,
        ),
    ] = None,
    api_key_env: Annotated[
        str | None,
        typer.Option(
            "--api-key-env",
            help="Environment variable holding the API key clients must send as a Bearer token.",
            show_default=False,
        ),
    ] = None,
    queue_size: Annotated[
        int | None,
        typer.Option(
            "--queue",
            help="Requests that may wait; more are refused (429).",
            min=1,
            show_default=default_of(ServeArgs, "queue_size"),
        ),
    ] = None,
    max_tokens: Annotated[
        int | None,
        typer.Option(
            "--max-tokens",
            help="Most tokens one answer may ask for.",
            min=1,
            show_default=default_of(ServeArgs, "max_tokens"),
        ),
    ] = None,
    max_body: Annotated[
        int | None,
        typer.Option(
            "--max-body",
            help="Largest request body in bytes (413 above).",
            min=1,
            show_default=default_of(ServeArgs, "max_body_bytes"),
        ),
    ] = None,
    db_wait: Annotated[
        float | None,
        typer.Option(
            "--db-wait",
            help="Seconds a write waits while another command holds the garden's database "
            "(then feedback gets 503 with Retry-After; answers are kept and logged later).",
            min=0.1,
            show_default=default_of(ServeArgs, "db_wait_s"),
        ),
    ] = None,
    precision: PrecisionOption = "int8",
    engine: EngineOption = "transformers",
) -> None:
    """Serve your bonsai over an OpenAI-compatible API.

    Endpoints: /v1/models, /v1/chat/completions ("stream": true too), /v1/embeddings.
    /v1/feedback rates, corrects or remembers, as `bonsai chat` does.
    Every exchange is logged in the garden: `bonsai logs` lists them.
    Point any OpenAI client at http://HOST:PORT/v1.
    """
    from bonsai.serve import build_state, run_server

    args = ServeArgs(
        host=host,
        run=run,
        api_key_env=api_key_env,
        precision=precision,
        engine=engine,
        **given(
            port=port,
            queue_size=queue_size,
            max_tokens=max_tokens,
            max_body_bytes=max_body,
            db_wait_s=db_wait,
        ),
    )
    g = open_garden(garden)
    if not args.is_local and not args.api_key_env:
        print_warning(f"listening on {host} without an API key: anyone who can reach it may use it")
    with err_console.status("Loading the student…") as status:
        state = build_state(g, args, status=lambda text: status.update(text))

    def announce(url: str) -> None:
        key = f", key from ${api_key_env}" if api_key_env else ""
        console.print(
            f"Serving [bold]{state.model_id}[/] at {url} (OpenAI-compatible{key}). Ctrl-C stops.",
            highlight=False,
        )

    run_server(state, announce=announce)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
