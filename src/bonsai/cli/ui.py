"""``bonsai ui``: the whole loop in a browser, on this machine by default."""

from __future__ import annotations

from typing import Annotated

import typer

from bonsai.cli.chat import EngineOption, PrecisionOption
from bonsai.cli.common import GardenOption, console, default_of, given, open_garden, print_warning
from bonsai.serve.args import MAX_UPLOAD_MB, MB, ServeArgs


def ui(
    garden: GardenOption = None,
    port: Annotated[
        int | None,
        typer.Option(
            "--port",
            "-p",
            help="Port to listen on (0: any free one).",
            show_default=default_of(ServeArgs, "port"),
        ),
    ] = None,
    host: Annotated[
        str,
        typer.Option(
            "--host",
            help="Address to listen on. 127.0.0.1 (the default) accepts only this machine; any "
            "other address requires the access token printed at start.",
        ),
    ] = "127.0.0.1",
    open_browser: Annotated[
        bool, typer.Option("--open", help="Open the pages in the default browser.")
    ] = False,
    run: Annotated[
        str | None,
        typer.Option(
            "--run",
            "-r",
            help="Run to chat with (default: the promoted run, else the newest finished one, "
            "else the base model; it follows promotions).",
            show_default=False,
        ),
    ] = None,
    max_upload_mb: Annotated[
        int | None,
        typer.Option(
            "--max-upload-mb",
            help="Largest file an upload may import.",
            min=1,
            show_default=str(MAX_UPLOAD_MB),
        ),
    ] = None,
    precision: PrecisionOption = "int8",
    engine: EngineOption = "transformers",
) -> None:
    """Open your garden in a browser: records, teach, train with live
    curves, chat with feedback, the feedback queue, grow, reports.

    Long work (teach, train, eval, grow) runs as jobs in a worker
    process, one at a time, kept in the garden: a reload or a restart
    shows where each stands. The OpenAI-compatible API of `bonsai serve`
    answers on the same server at /v1.
    """
    from bonsai.web.server import build_ui_state, run_ui

    args = ServeArgs(host=host, run=run, precision=precision, engine=engine, **given(port=port))
    g = open_garden(garden)
    upload = (max_upload_mb or MAX_UPLOAD_MB) * MB
    state = build_ui_state(g, args, max_upload_bytes=upload)
    token = state.web.token

    def announce(url: str) -> None:
        address = f"{url}?token={token}" if token else url
        console.print(
            f"BONSAI for [bold]{g.root.name}[/] at [bold]{address}[/]"
            f" (API at {url}v1). Ctrl-C stops.",
            highlight=False,
            soft_wrap=True,
        )
        if token:
            print_warning(
                f"listening on {host}: anyone who can reach it needs the token above; "
                "send it to no one you would not give this garden"
            )
        if open_browser:
            import webbrowser

            webbrowser.open(address)

    run_ui(state, announce=announce)


def register(app: typer.Typer) -> None:
    app.command("ui")(ui)
