"""``bonsai serve``: the student behind an OpenAI-compatible HTTP API on this machine.

- :class:`~bonsai.serve.args.ServeArgs`: host, port, run, API key variable, limits.
- :func:`~bonsai.serve.app.create_app`: the FastAPI app (models, chat completions with streaming,
  embeddings, feedback).
- :func:`run_server`: load the run and listen (uvicorn, one process, one model thread).
- :func:`listen`: the one server loop, which ``bonsai ui`` uses too.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from bonsai.serve.args import ServeArgs

if TYPE_CHECKING:
    from bonsai.garden import Garden

__all__ = ["ServeArgs", "build_state", "connect_waiting", "listen", "run_server"]


def build_state(garden: Garden, args: ServeArgs, *, status: Callable[[str], None] | None = None):
    """Load the run and open the database connections the server needs."""
    from bonsai.chat.session import ChatSession
    from bonsai.generate.loading import choose_run, load_generator
    from bonsai.rag.embed import default_model_name
    from bonsai.serve.state import ServerState
    from bonsai.serve.turnlog import TurnLogWriter

    api_key = args.api_key()
    choice = choose_run(garden, args.run)
    if status:
        status(f"Loading {choice.describe()}…")
    loaded = load_generator(choice, engine=args.engine, precision=args.precision)
    turns = TurnLogWriter(garden.db_path)
    session = ChatSession(
        connect_waiting(garden.db_path, args.db_wait_s),
        loaded.engine,
        loaded.layout,
        run_id=choice.id,
        base_model=choice.base_model,
        client="serve",
        session_id="serve",
        log_turn=turns.write,
    )
    return ServerState(
        args=args,
        session=session,
        feedback_conn=connect_waiting(garden.db_path, args.db_wait_s),
        model_id=choice.id,
        api_key=api_key,
        embed_model=default_model_name,
        turns=turns,
    )


def connect_waiting(path: Path, wait_s: float) -> sqlite3.Connection:
    """A connection whose writes wait ``wait_s`` for another writer (then the server answers
    without blocking the model thread any longer; see :mod:`bonsai.serve.turnlog`)."""
    from bonsai.db import connect
    from bonsai.serve.turnlog import set_wait

    conn = connect(path)
    set_wait(conn, wait_s)
    return conn


def run_server(state, *, announce: Callable[[str], None] | None = None) -> None:
    """Listen until interrupted (Ctrl-C or SIGTERM stop it cleanly)."""
    from bonsai.serve.app import create_app

    args = state.args

    def started(port: int) -> None:
        # In the model thread, before any request: the first answer does not wait for the
        # retrieval encoder and the language detector.
        state.worker.submit(state.session.warm)
        if announce:
            announce(f"http://{args.host}:{port}/v1")

    listen(create_app(state), args, on_started=started)


def listen(app, args: ServeArgs, *, on_started: Callable[[int], None] | None = None) -> None:
    """Serve ``app`` on ``args.host``/``args.port`` until interrupted: one process, connections
    idle past ``args.idle_timeout_s`` closed. ``on_started`` gets the bound port (``--port 0``
    lets the system choose) once the server listens. ``bonsai serve`` and ``bonsai ui`` both
    listen here."""
    import uvicorn

    from bonsai.serve.http import IdleTimeoutH11

    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
        workers=1,
        http=IdleTimeoutH11,
        timeout_keep_alive=max(1, round(args.idle_timeout_s)),
    )

    class Server(uvicorn.Server):
        async def startup(self, sockets=None) -> None:
            await super().startup(sockets)
            if self.started and on_started and self.servers and self.servers[0].sockets:
                on_started(self.servers[0].sockets[0].getsockname()[1])

    Server(config).run()
