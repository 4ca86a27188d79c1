"""The Chat page and the Feedback queue.

The chat page talks to this server's own OpenAI-compatible API (``/v1/chat/completions`` with
streaming, ``/v1/feedback``), so a turn and its feedback are stored exactly as ``bonsai chat``
and ``bonsai serve`` store them. The queue shows what each pending feedback would become in the
next grow (``plan_feedback``, the same plan ``bonsai grow --dry-run`` prints) and lets a person
accept, edit or reject it first.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from bonsai.chat import store as chat_store
from bonsai.db import transaction
from bonsai.errors import BonsaiError
from bonsai.web.render import render

router = APIRouter()

BAD_REASONS = (
    "wrong",
    "made up",
    "repeats itself",
    "too long",
    "not what I asked",
    "wrong language",
)
GOOD_REASONS = ("correct", "helpful", "good question back", "well written")


@router.get("/chat", response_class=HTMLResponse)
def chat_page(request: Request, session: str | None = None) -> HTMLResponse:
    web = request.app.state.web
    conn = web.garden().db
    turns = chat_store.list_turns(conn, limit=50, session=session) if session else []
    feedback = chat_store.feedback_for(conn, [t.id for t in turns]) if turns else {}
    sessions = conn.execute(
        "SELECT session, MAX(created_at), COUNT(*), MIN(prompt) FROM chat_turns"
        " WHERE client LIKE 'serve%' AND session LIKE 'web-%' GROUP BY session"
        " ORDER BY MAX(created_at) DESC LIMIT 12"
    ).fetchall()
    lazy = getattr(request.app.state, "bonsai", None)
    loaded = getattr(getattr(lazy, "session", None), "loaded_run", None)
    return render(
        request,
        "chat.html",
        active="chat",
        session=session or f"web-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}",
        turns=turns,
        feedback=feedback,
        sessions=sessions,
        loaded=loaded,
        bad_reasons=BAD_REASONS,
        good_reasons=GOOD_REASONS,
    )


# -- the feedback queue ---------------------------------------------------------------------------


def _queue(garden: Any) -> list[dict[str, Any]]:
    """Every pending feedback with what the next grow would make of it."""
    from bonsai.grow.feedback_to_records import plan_feedback

    plan = plan_feedback(garden, "preview")
    becomes: dict[int, dict[str, Any]] = {}
    for item in plan.records:
        r = item.record
        becomes[item.feedback_id] = {
            "what": "record",
            "detail": f"{r.category or '?'} · {r.language or '?'}",
            "instruction": r.instruction,
            "output": r.output,
        }
        for bad in item.also_used:
            becomes[bad] = {"what": "settled", "detail": f"by the correction {item.feedback_id}"}
    for note in plan.notes:
        becomes.setdefault(
            note.feedback_id, {"what": "note", "detail": note.source, "output": note.text}
        )
    for review_item in plan.review:
        becomes[review_item.feedback_id] = {"what": "review", "detail": review_item.why}
    for old, new in plan.superseded.items():
        becomes[old] = {"what": "superseded", "detail": f"replaced by the newer correction {new}"}
    for bad, record_id in plan.settled_bad.items():
        becomes[bad] = {"what": "settled", "detail": f"already corrected by record {record_id}"}
    reviewed = dict(
        garden.db.execute("SELECT feedback_id, decision FROM feedback_reviews").fetchall()
    )
    out = []
    for feedback, turn in chat_store.pending_feedback(garden.db):
        out.append(
            {
                "fb": feedback,
                "turn": turn,
                "becomes": becomes.get(feedback.id, {"what": "kept", "detail": "a good rating"}),
                "accepted": reviewed.get(feedback.id) == "accepted",
            }
        )
    return out


@router.get("/feedback", response_class=HTMLResponse)
def feedback_page(request: Request) -> HTMLResponse:
    garden = request.app.state.web.garden()
    try:
        items = _queue(garden)
        error = None
    except BonsaiError as exc:
        items, error = [], str(exc)
    return render(request, "feedback.html", active="feedback", items=items, error=error)


def _pending(conn: Any, feedback_id: int) -> chat_store.Feedback:
    row = conn.execute("SELECT * FROM chat_feedback WHERE id = ?", (feedback_id,)).fetchone()
    if row is None:
        raise BonsaiError(f"no feedback {feedback_id}")
    item = chat_store.Feedback(**dict(row))
    if item.status != "pending":
        raise BonsaiError(f"feedback {feedback_id} is {item.status} already")
    return item


def _reviewed(conn: Any, feedback_id: int, decision: str) -> None:
    conn.execute(
        "INSERT INTO feedback_reviews (feedback_id, decision, at) VALUES (?, ?, ?)"
        " ON CONFLICT(feedback_id) DO UPDATE SET decision = excluded.decision, at = excluded.at",
        (feedback_id, decision, time.time()),
    )


def _done(request: Request, text: str, kind: str = "ok") -> HTMLResponse:
    response = render(request, "message.html", kind=kind, text=text)
    if kind == "ok":
        response.headers["HX-Trigger"] = "feedback-changed"
    return response


@router.post("/feedback/{feedback_id}/accept", response_class=HTMLResponse)
def feedback_accept(request: Request, feedback_id: int) -> HTMLResponse:
    conn = request.app.state.web.garden().db
    try:
        _pending(conn, feedback_id)
    except BonsaiError as exc:
        return _done(request, str(exc), "error")
    _reviewed(conn, feedback_id, "accepted")
    return _done(request, f"Feedback {feedback_id} accepted: the next grow uses it.")


@router.post("/feedback/{feedback_id}/reject", response_class=HTMLResponse)
def feedback_reject(request: Request, feedback_id: int) -> HTMLResponse:
    conn = request.app.state.web.garden().db
    try:
        _pending(conn, feedback_id)
    except BonsaiError as exc:
        return _done(request, str(exc), "error")
    with transaction(conn):
        chat_store.mark_feedback(conn, [feedback_id], "dismissed", used_by="rejected in review")
        _reviewed(conn, feedback_id, "rejected")
    return _done(request, f"Feedback {feedback_id} rejected: grow will not use it.")


@router.post("/feedback/{feedback_id}/edit", response_class=HTMLResponse)
async def feedback_edit(request: Request, feedback_id: int) -> HTMLResponse:
    """Change the text of a correction or an experience (or the reason of a rating) before grow
    uses it; a rating without a better answer gets one (a new correction of the same turn)."""
    conn = request.app.state.web.garden().db
    form = await request.form()
    text = str(form.get("text") or "").strip()
    try:
        item = _pending(conn, feedback_id)
        if item.kind in ("good", "bad"):
            if not text:
                raise BonsaiError("write the better answer first", field="text")
            new = chat_store.add_feedback(
                conn, "correction", turn_id=item.turn_id, text=text, client="web review"
            )
            _reviewed(conn, new.id, "accepted")
            return _done(request, f"Added a better answer (feedback {new.id}) to that turn.")
        if not text:
            raise BonsaiError("the text is empty", field="text")
        if len(text) > chat_store.MAX_FEEDBACK_CHARS:
            raise BonsaiError("the text is too long", field="text")
        with transaction(conn):
            conn.execute(
                "UPDATE chat_feedback SET text = ?, updated_at = ? WHERE id = ?"
                " AND status = 'pending'",
                (text, time.time(), feedback_id),
            )
            _reviewed(conn, feedback_id, "accepted")
    except BonsaiError as exc:
        return _done(request, str(exc), "error")
    return _done(request, f"Feedback {feedback_id} edited and accepted.")
