"""The OpenAI-compatible HTTP API: models, chat completions (streamed or not), embeddings, and
BONSAI's own feedback endpoint.

Every request that uses the model goes through the one :class:`~bonsai.serve.worker.ModelWorker`;
a chat exchange is logged by :meth:`~bonsai.chat.session.ChatSession.ask` exactly once, in the
worker, whether it finishes, the client goes away mid-stream, or it fails. Feedback is committed
(SQLite WAL) before the response says it was received.
"""

from __future__ import annotations

import asyncio
import hmac
import sqlite3
import sys
import threading
import traceback
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from bonsai.chat import store
from bonsai.chat.session import ChatSession
from bonsai.errors import BonsaiError
from bonsai.serve.args import ServeArgs
from bonsai.serve.protocol import (
    FINISH_REASON,
    ApiError,
    bonsai_extra,
    chunk,
    completion_body,
    embeddings_body,
    model_card,
    now,
    parse_chat,
    parse_embeddings,
    parse_json,
    sse,
    usage,
)
from bonsai.serve.worker import Busy, ModelWorker

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
    started: float = field(default_factory=lambda: float(now()))
    worker: ModelWorker = field(init=False)
    feedback_lock: threading.Lock = field(default_factory=threading.Lock)
    web: Any = None
    """The pages' state (a :class:`bonsai.web.WebState`) when ``bonsai ui`` serves them."""

    def __post_init__(self) -> None:
        self.worker = ModelWorker(self.args.queue_size)


def create_app(state: ServerState, *, pages: bool = False) -> FastAPI:
    """The API; with ``pages`` also the web pages of ``bonsai ui`` (``state.web``)."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state.worker.start()
        try:
            yield
        finally:
            state.worker.stop()

    app = FastAPI(title="BONSAI", docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.bonsai = state

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        error = ApiError(exc.status_code, str(exc.detail), code=f"http_{exc.status_code}")
        return JSONResponse(error.body(), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        traceback.print_exception(exc, file=sys.stderr)
        error = ApiError(500, "internal server error", type="server_error")
        return JSONResponse(error.body(), status_code=500)

    def authorize(request: Request) -> None:
        if state.api_key is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), state.api_key.encode()
        ):
            raise ApiError(
                401,
                "missing or wrong API key (send 'Authorization: Bearer KEY')",
                type="authentication_error",
                code="invalid_api_key",
            )

    async def read_json(request: Request) -> dict[str, Any]:
        limit = state.args.max_body_bytes
        too_big = ApiError(
            413, f"the request body is larger than {limit} bytes", code="request_too_large"
        )
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > limit:
            raise too_big
        body = bytearray()
        async for part in request.stream():
            body += part
            if len(body) > limit:
                raise too_big
        return parse_json(bytes(body))

    def submit(job: Callable[[], Any]) -> Any:
        try:
            return state.worker.submit(job)
        except Busy as exc:
            raise ApiError(
                429,
                f"the server is busy ({exc}); try again shortly",
                type="rate_limit_error",
                code="queue_full",
                headers={"Retry-After": "2"},
            ) from None

    def check_model(name: str) -> None:
        if name not in (state.model_id, MODEL_ALIAS):
            raise ApiError(
                404,
                f"the model '{name}' does not exist here; this server serves '{state.model_id}'",
                param="model",
                code="model_not_found",
            )

    def client_name(request: Request, user: str | None) -> str:
        host = request.client.host if request.client else "?"
        return f"serve {host}" + (f" user={user}" if user else "")

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "model": state.model_id, "waiting": state.worker.waiting}

    @app.get("/v1/models")
    async def models(request: Request) -> dict[str, Any]:
        authorize(request)
        cards = [model_card(state.model_id, state.started)]
        if state.embed_model is not None:
            cards.append(model_card(state.embed_model(), state.started))
        return {"object": "list", "data": cards}

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Any:
        authorize(request)
        req = parse_chat(
            await read_json(request),
            max_tokens=state.args.max_tokens,
            default_max_tokens=state.args.default_max_tokens,
        )
        check_model(req.model)
        turn_id = store.new_turn_id()
        ask = partial(
            state.session.ask,
            req.question,
            mode=req.mode,
            rag=req.rag,
            history=req.history,
            system=req.system,
            generate_args=req.args,
            messages=req.messages,
            client=client_name(request, req.user),
            turn_id=turn_id,
            session=req.session or req.user or "serve",
        )
        if req.stream:
            return _stream(ask, turn_id, req.include_usage)
        future = submit(ask)
        try:
            turn = await asyncio.wrap_future(future)
        except BonsaiError as exc:
            raise ApiError(400, str(exc), param=exc.field) from None
        return JSONResponse(completion_body(turn, state.model_id))

    def _stream(ask: Callable[..., Any], turn_id: str, include_usage: bool) -> StreamingResponse:
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[tuple[str, Any, Any]] = asyncio.Queue()
        gone = threading.Event()

        def post(*item: Any) -> None:
            try:
                loop.call_soon_threadsafe(events.put_nowait, item)
            except RuntimeError:  # the event loop closed (shutdown): nobody is listening
                gone.set()

        def job() -> None:
            try:
                turn = ask(
                    on_delta=lambda kind, text: post("delta", kind, text), should_stop=gone.is_set
                )
            except BaseException as exc:
                post("error", exc, None)
                raise
            post("done", turn, None)

        future = submit(job)  # refused here, before any byte of the stream is sent
        model = state.model_id

        async def body() -> AsyncIterator[str]:
            created = now()
            try:
                yield chunk(turn_id, model, created, {"role": "assistant", "content": ""})
                while True:
                    kind, first, second = await events.get()
                    if kind == "delta":
                        key = "content" if first == "answer" else "reasoning_content"
                        yield chunk(turn_id, model, created, {key: second})
                    elif kind == "done":
                        finish = FINISH_REASON.get(first.generation.finish_reason, "stop")
                        yield chunk(
                            turn_id, model, created, {}, finish=finish, bonsai=bonsai_extra(first)
                        )
                        if include_usage:
                            yield sse(
                                {
                                    "id": turn_id,
                                    "object": "chat.completion.chunk",
                                    "created": created,
                                    "model": model,
                                    "choices": [],
                                    "usage": usage(first.generation),
                                }
                            )
                        yield sse("[DONE]")
                        return
                    else:
                        status = 400 if isinstance(first, BonsaiError) else 500
                        message = str(first) if status == 400 else "internal server error"
                        yield sse(ApiError(status, message, type="server_error").body())
                        yield sse("[DONE]")
                        return
            finally:
                # The client went away (or the stream ended): stop generating, drop a queued job.
                gone.set()
                future.cancel()

        return StreamingResponse(
            body(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> Any:
        authorize(request)
        req = parse_embeddings(await read_json(request))
        if state.embed_model is None:
            raise ApiError(404, "this server has no embedding model", code="model_not_found")
        from bonsai.rag.embed import canonical_name

        name = state.embed_model()
        asked = req.model if req.model in ("default", MODEL_ALIAS) else canonical_name(req.model)
        if asked not in (name, "default", MODEL_ALIAS):
            raise ApiError(
                404,
                f"the embedding model '{req.model}' does not exist here; use '{name}'",
                param="model",
                code="model_not_found",
            )

        def encode() -> Any:
            from bonsai.rag.embed import load_encoder

            return load_encoder(name).encode_passages(req.inputs)

        vectors = await asyncio.wrap_future(submit(encode))
        return JSONResponse(embeddings_body(vectors, req, name))

    @app.post("/v1/feedback")
    async def feedback(request: Request) -> Any:
        authorize(request)
        data = await read_json(request)
        fields = {}
        for name in ("kind", "turn_id", "text", "reason"):
            value = data.get(name)
            if value is not None and not isinstance(value, str):
                raise ApiError(400, f"'{name}' must be text", param=name)
            fields[name] = value
        if not fields["kind"]:
            raise ApiError(
                400, "'kind' is required: good, bad, correction or experience", param="kind"
            )
        client = client_name(
            request, data.get("user") if isinstance(data.get("user"), str) else None
        )

        def write() -> store.Feedback:
            with state.feedback_lock:
                return store.add_feedback(
                    state.feedback_conn,
                    fields["kind"],
                    turn_id=fields["turn_id"] or None,
                    text=fields["text"] or "",
                    reason=fields["reason"] or "",
                    client=client,
                )

        try:
            item = await run_in_threadpool(write)
        except BonsaiError as exc:
            status = 404 if exc.message.startswith("no chat turn") else 400
            raise ApiError(status, str(exc), param=exc.field) from None
        return JSONResponse({"object": "feedback", **item.to_dict()})

    if pages:
        from bonsai.web import add_pages

        add_pages(app, state.web)
    return app
