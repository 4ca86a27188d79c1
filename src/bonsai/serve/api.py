"""The OpenAI endpoints: ``/v1/models``, ``/v1/chat/completions`` (streamed or not) and
``/v1/embeddings``.

Every request that uses the model goes through the one :class:`~bonsai.serve.worker.ModelWorker`.
A chat turn gets its id before it is queued, and every turn that got an id is logged exactly
once: answered, cancelled by the client (even before the model started on it), failed, or
dropped from the queue when the server stops.
"""

from __future__ import annotations

import asyncio
import time
from functools import partial
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from bonsai.chat import store
from bonsai.errors import BonsaiError, DatabaseBusy
from bonsai.serve.body import read_json
from bonsai.serve.errors import database_busy
from bonsai.serve.protocol import (
    ApiError,
    ChatRequest,
    completion_body,
    embeddings_body,
    model_card,
    parse_chat,
    parse_embeddings,
)
from bonsai.serve.state import MODEL_ALIAS, ServerState, client_name, get_state, require_key
from bonsai.serve.stream import stream_turn

router = APIRouter(prefix="/v1", dependencies=[Depends(require_key)])


@router.get("/models")
async def models(state: ServerState = Depends(get_state)) -> dict[str, Any]:
    cards = [model_card(state.model_id, state.started)]
    if state.embed_model is not None:
        cards.append(model_card(state.embed_model(), state.started))
    return {"object": "list", "data": cards}


@router.post("/chat/completions")
async def chat_completions(request: Request, state: ServerState = Depends(get_state)) -> Any:
    req = parse_chat(
        await read_json(request, state.args.max_body_bytes),
        max_tokens=state.args.max_tokens,
        default_max_tokens=state.args.default_max_tokens,
    )
    state.check_model(req.model)
    await check_prompt_size(state, req)
    turn_id = store.new_turn_id()
    client = client_name(request, req.user)
    ask = partial(
        state.session.ask,
        req.question,
        mode=req.mode,
        rag=req.rag,
        history=req.history,
        system=req.system,
        generate_args=req.args,
        messages=req.messages,
        client=client,
        turn_id=turn_id,
        session=req.session or req.user or "serve",
    )
    unanswered = partial(unanswered_turn, state, req, turn_id, client)
    if req.stream:
        return stream_turn(state, ask, unanswered, turn_id, req.include_usage)
    future = state.submit(ask)
    state.log_if_dropped(future, unanswered)
    try:
        turn = await asyncio.wrap_future(future)
    except DatabaseBusy:
        raise database_busy() from None
    except BonsaiError as exc:
        raise ApiError(400, str(exc), param=exc.field) from None
    except asyncio.CancelledError:
        if future.cancelled():  # dropped from the queue: the server is stopping
            raise ApiError(503, "the server is shutting down", type="server_error") from None
        raise
    return JSONResponse(completion_body(turn, state.model_id))


async def check_prompt_size(state: ServerState, req: ChatRequest) -> None:
    """Refuse a question (with its system message) that alone overflows the model's context,
    here and at once, rather than after it has waited for the model thread."""
    engine = state.session.engine
    if engine is None:  # the pages' model loads on the first question: the session checks then
        return
    text = f"{req.system}\n{req.question}" if req.system else req.question
    tokens = await run_in_threadpool(engine.count_tokens, text)
    limit = engine.max_context - 1
    if tokens >= limit:
        raise ApiError(
            400,
            f"the prompt is {tokens} tokens; this model takes at most {limit} (prompt and "
            "answer together): ask a shorter question",
            param="messages",
            code="context_length_exceeded",
        )


def unanswered_turn(
    state: ServerState, req: ChatRequest, turn_id: str, client: str
) -> store.TurnLog:
    """The log of a turn the model never started: its client left, or the server stopped."""
    session = state.session
    return store.TurnLog(
        id=turn_id,
        session=req.session or req.user or "serve",
        mode=req.mode or session.args.mode,
        run_id=session.run_id,
        prompt=req.question,
        rendered_prompt="",
        answer="",
        base_model=session.base_model,
        layout=session.layout.name,
        messages=req.messages,
        settings={"generate": req.args.to_dict()},
        finish_reason="cancelled",
        status="cancelled",
        latency_s=0.0,
        client=client,
        created_at=time.time(),
    )


@router.post("/embeddings")
async def embeddings(request: Request, state: ServerState = Depends(get_state)) -> Any:
    req = parse_embeddings(await read_json(request, state.args.max_body_bytes))
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

    vectors = await asyncio.wrap_future(state.submit(encode))
    return JSONResponse(embeddings_body(vectors, req, name))
