"""``POST /v1/feedback``: BONSAI's own endpoint to rate, correct or remember, as `bonsai chat`
does. Feedback is committed (SQLite WAL) before the response says it was received."""

from __future__ import annotations

import sqlite3
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from bonsai.chat import store
from bonsai.errors import BonsaiError, DatabaseBusy
from bonsai.serve.body import read_json
from bonsai.serve.errors import database_busy
from bonsai.serve.protocol import ApiError
from bonsai.serve.state import ServerState, client_name, get_state, require_key
from bonsai.serve.turnlog import is_locked

router = APIRouter(prefix="/v1", dependencies=[Depends(require_key)])

TEXT_FIELDS = ("kind", "turn_id", "text", "reason", "user")


@router.post("/feedback")
async def feedback(request: Request, state: ServerState = Depends(get_state)) -> Any:
    fields = feedback_fields(await read_json(request, state.args.max_body_bytes))
    turn_id = fields["turn_id"] or None
    if turn_id and state.turns is not None and state.turns.waiting(turn_id):
        raise database_busy()  # its turn is not written yet: the database is held
    client = client_name(request, fields["user"] or None)

    def write() -> store.Feedback:
        with state.feedback_lock:
            return store.add_feedback(
                state.feedback_conn,
                fields["kind"] or "",
                turn_id=turn_id,
                text=fields["text"] or "",
                reason=fields["reason"] or "",
                client=client,
            )

    try:
        item = await run_in_threadpool(write)
    except DatabaseBusy:
        raise database_busy() from None
    except BonsaiError as exc:
        status = 404 if exc.message.startswith("no chat turn") else 400
        raise ApiError(status, str(exc), param=exc.field) from None
    except sqlite3.OperationalError as exc:
        if is_locked(exc):
            raise database_busy() from None
        raise
    return JSONResponse({"object": "feedback", **item.to_dict()})


def feedback_fields(data: dict[str, Any]) -> dict[str, str | None]:
    fields: dict[str, str | None] = {}
    for name in TEXT_FIELDS:
        value = data.get(name)
        if value is not None and not isinstance(value, str):
            raise ApiError(400, f"'{name}' must be text", param=name)
        fields[name] = value
    if not fields["kind"]:
        raise ApiError(400, "'kind' is required: good, bad, correction or experience", param="kind")
    return fields
