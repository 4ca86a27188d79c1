"""The HTTP app: the OpenAI-compatible API, BONSAI's feedback endpoint, health and schema.

Each group of endpoints is a router of its own (:mod:`~bonsai.serve.api`,
:mod:`~bonsai.serve.feedback`, :mod:`~bonsai.serve.system`); :func:`create_app` only puts them
together, so that another package can add its own routers with ``app.include_router(...)``,
using :func:`~bonsai.serve.state.get_state` and :func:`~bonsai.serve.state.require_key`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from bonsai.serve import api, feedback, system
from bonsai.serve.errors import install_error_handlers
from bonsai.serve.state import MODEL_ALIAS, ServerState

__all__ = ["MODEL_ALIAS", "ServerState", "create_app"]


def create_app(state: ServerState, *, pages: bool = False) -> FastAPI:
    """The API; with ``pages`` also the web pages of ``bonsai ui`` (``state.web``)."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if state.turns is not None:
            state.turns.start()
        state.worker.start()
        try:
            yield
        finally:
            state.worker.stop()  # the queued jobs it drops are logged through the turn writer
            if state.turns is not None:
                state.turns.stop()

    # The schema is served by bonsai.serve.system, behind the key; no docs pages.
    app = FastAPI(
        title="BONSAI", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan
    )
    app.state.bonsai = state
    install_error_handlers(app)
    for router in (api.router, feedback.router, system.router):
        app.include_router(router)
    if pages:
        from bonsai.web import add_pages

        add_pages(app, state.web)
    return app
