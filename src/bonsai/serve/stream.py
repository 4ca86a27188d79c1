"""A chat answer as server-sent events, token by token, the OpenAI way.

The job is queued before the first byte is sent (a full queue is still a plain 429). If the
client hangs up, generation stops at the next token; if it hung up before the model even
started, the job only logs the turn as cancelled. Either way the turn is logged once.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from fastapi.responses import StreamingResponse

from bonsai.chat import store
from bonsai.errors import BonsaiError
from bonsai.serve.protocol import FINISH_REASON, ApiError, bonsai_extra, chunk, now, sse, usage

if TYPE_CHECKING:
    from bonsai.serve.state import ServerState

Event = tuple[str, Any]


def stream_turn(
    state: ServerState,
    ask: Callable[..., Any],
    unanswered: Callable[[], store.TurnLog],
    turn_id: str,
    include_usage: bool,
) -> StreamingResponse:
    loop = asyncio.get_running_loop()
    events: asyncio.Queue[Event] = asyncio.Queue()
    gone = threading.Event()

    def post(kind: str, value: Any) -> None:
        try:
            loop.call_soon_threadsafe(events.put_nowait, (kind, value))
        except RuntimeError:  # the event loop closed (shutdown): nobody is listening
            gone.set()

    def job() -> None:
        if gone.is_set():  # the client left while this waited: log it, skip the model
            session = state.session
            session.log_turn(session.conn, unanswered())
            return
        try:
            turn = ask(
                on_delta=lambda kind, text: post("delta", (kind, text)), should_stop=gone.is_set
            )
        except BaseException as exc:
            post("error", exc)
            raise
        post("done", turn)

    future = state.submit(job)  # refused here, before any byte of the stream is sent
    state.log_if_dropped(future, unanswered)

    def dropped(done: Any) -> None:
        if done.cancelled():
            post("dropped", None)

    future.add_done_callback(dropped)
    body = _events(events, turn_id, state.model_id, include_usage, gone)
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _events(
    events: asyncio.Queue[Event],
    turn_id: str,
    model: str,
    include_usage: bool,
    gone: threading.Event,
) -> AsyncIterator[str]:
    created = now()
    try:
        yield chunk(turn_id, model, created, {"role": "assistant", "content": ""})
        while True:
            kind, value = await events.get()
            if kind == "delta":
                part, text = value
                key = "content" if part == "answer" else "reasoning_content"
                yield chunk(turn_id, model, created, {key: text})
                continue
            if kind == "done":
                finish = FINISH_REASON.get(value.generation.finish_reason, "stop")
                yield chunk(turn_id, model, created, {}, finish=finish, bonsai=bonsai_extra(value))
                if include_usage:
                    yield _usage_chunk(turn_id, model, created, value)
            else:
                yield sse(_stream_error(kind, value).body())
            yield sse("[DONE]")
            return
    finally:
        # The client went away (or the stream ended): stop generating. A job still queued is
        # not cancelled: it runs, sees this, and logs the turn as cancelled.
        gone.set()


def _usage_chunk(turn_id: str, model: str, created: int, turn: Any) -> str:
    body = {
        "id": turn_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [],
        "usage": usage(turn.generation),
    }
    return sse(body)


def _stream_error(kind: str, value: Any) -> ApiError:
    if kind == "dropped":
        return ApiError(503, "the server is shutting down", type="server_error")
    if isinstance(value, BonsaiError):
        return ApiError(400, str(value), param=value.field)
    from bonsai.serve.turnlog import is_locked

    if is_locked(value):
        from bonsai.serve.errors import database_busy

        return database_busy()
    return ApiError(500, "internal server error", type="server_error")
