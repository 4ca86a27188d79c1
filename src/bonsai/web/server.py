"""Starting ``bonsai ui``: the API and the pages on one server, the job worker beside it."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from bonsai.garden import Garden
from bonsai.serve.args import ServeArgs
from bonsai.web.state import WebState


def build_ui_state(garden: Garden, args: ServeArgs, *, max_upload_bytes: int | None = None) -> Any:
    """The server state with a model that loads on the first question, and the pages' state.

    Off loopback, an access token is made; the caller prints it (it is not stored anywhere)."""
    from bonsai.rag.embed import default_model_name
    from bonsai.serve import connect_waiting
    from bonsai.serve.app import ServerState
    from bonsai.serve.turnlog import TurnLogWriter
    from bonsai.web.chat import LazySession

    turns = TurnLogWriter(garden.db_path)
    session = LazySession(
        garden.root,
        run=args.run,
        engine=args.engine,
        precision=args.precision,
        db_wait_s=args.db_wait_s,
        log_turn=turns.write,
    )
    web = WebState(root=garden.root, token=None if args.is_local else secrets.token_urlsafe(18))
    if max_upload_bytes is not None:
        web.max_upload_bytes = max_upload_bytes
    state = ServerState(
        args=args,
        session=session,  # type: ignore[arg-type]  # answers through ChatSession.ask
        feedback_conn=connect_waiting(garden.db_path, args.db_wait_s),
        model_id=session.wanted_run(),
        api_key=args.api_key(),
        embed_model=default_model_name,
        web=web,
        turns=turns,
    )
    session.on_load = lambda run_id: setattr(state, "model_id", run_id)
    return state


def run_ui(
    state: Any,
    *,
    announce: Callable[[str], None] | None = None,
    jobs: bool = True,
    warm: bool = True,
) -> None:
    """Serve until interrupted; the job worker runs alongside and stops with the server."""
    # transformers imports itself lazily; two threads importing it for the first time at once
    # (the model loading in the model thread, a training preview in a request thread) can see
    # it half-initialised. It is imported whole once, here, before any thread starts.
    import transformers  # noqa: F401

    from bonsai.serve import listen
    from bonsai.serve.app import create_app
    from bonsai.web.supervisor import JobSupervisor

    args = state.args
    supervisor = JobSupervisor(state.web.root) if jobs else None
    state.web.supervisor = supervisor

    def started(port: int) -> None:
        if warm:
            state.worker.submit(state.session.warm)  # in the model thread, in the background
        if announce:
            host = args.host if ":" not in args.host else f"[{args.host}]"
            announce(f"http://{host}:{port}/")

    if supervisor is not None:
        supervisor.start()
    try:
        listen(create_app(state, pages=True), args, on_started=started)
    finally:
        if supervisor is not None:
            supervisor.stop()
