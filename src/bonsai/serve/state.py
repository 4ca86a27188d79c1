"""What every router shares: the server's state, and the dependencies that fetch it and check the
API key. A router added from outside (a web UI) uses the same two::

    router = APIRouter(dependencies=[Depends(require_key)])

    @router.get("/ui/turns")
    def turns(state: ServerState = Depends(get_state)): ...
"""

from __future__ import annotations

import hmac
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi import Request

from bonsai.chat.session import ChatSession
from bonsai.chat.store import TurnLog
from bonsai.serve.args import ServeArgs
from bonsai.serve.protocol import ApiError, now
from bonsai.serve.turnlog import TurnLogWriter
from bonsai.serve.worker import Busy, ModelWorker

T = TypeVar("T")

MODEL_ALIAS = "bonsai"
"""Accepted as a model name too: whatever this server serves."""


@dataclass
class ServerState:
    """Everything the endpoints share."""

    args: ServeArgs
    session: ChatSession
    """Used only in the worker thread (it owns its own database connection)."""
    feedback_conn: sqlite3.Connection
    """A second connection, for feedback written by request threads, guarded by a lock."""
    model_id: str
    api_key: str | None = None
    embed_model: Callable[[], str] | None = None
    """The embedding model's name (resolved lazily); None turns /v1/embeddings off."""
    turns: TurnLogWriter | None = None
    """Where a turn goes when the database is busy (None: the session logs as it likes)."""
    started: float = field(default_factory=lambda: float(now()))
    worker: ModelWorker = field(init=False)
    feedback_lock: threading.Lock = field(default_factory=threading.Lock)
    web: Any = None
    """The pages' state (a :class:`bonsai.web.WebState`) when ``bonsai ui`` serves them."""

    def __post_init__(self) -> None:
        self.worker = ModelWorker(self.args.queue_size)

    def submit(self, job: Callable[[], T]) -> Future[T]:
        """Queue ``job`` for the model thread; a full queue is a 429 with Retry-After."""
        try:
            return self.worker.submit(job)
        except Busy as exc:
            raise ApiError(
                429,
                f"the server is busy ({exc}); try again shortly",
                type="rate_limit_error",
                code="queue_full",
                headers={"Retry-After": "2"},
            ) from None

    def log_if_dropped(self, future: Future[Any], unanswered: Callable[[], TurnLog]) -> None:
        """A queued job the worker drops at shutdown never runs: log its turn as cancelled."""

        def logged(done: Future[Any]) -> None:
            if done.cancelled() and self.turns is not None:
                self.turns.defer(unanswered())

        future.add_done_callback(logged)

    def check_model(self, name: str) -> None:
        if name not in (self.model_id, MODEL_ALIAS):
            raise ApiError(
                404,
                f"the model '{name}' does not exist here; this server serves '{self.model_id}'",
                param="model",
                code="model_not_found",
            )


def get_state(request: Request) -> ServerState:
    return request.app.state.bonsai


def require_key(request: Request) -> None:
    """The API key, when the server has one: ``Authorization: Bearer KEY``."""
    key = get_state(request).api_key
    if key is None:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), key.encode()):
        raise ApiError(
            401,
            "missing or wrong API key (send 'Authorization: Bearer KEY')",
            type="authentication_error",
            code="invalid_api_key",
        )


def client_name(request: Request, user: str | None) -> str:
    host = request.client.host if request.client else "?"
    return f"serve {host}" + (f" user={user}" if user else "")
