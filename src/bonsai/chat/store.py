"""Chat turns and feedback in the garden database (tables of migration m008).

Every write is one transaction: a turn is logged whole or not at all, and feedback is on disk
(WAL, committed) before anyone is told it was received. The grow stage reads pending feedback
with :func:`pending_feedback` and marks what it used with :func:`mark_feedback`.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from bonsai.db.connection import transaction
from bonsai.errors import BonsaiError

FEEDBACK_KINDS = ("good", "bad", "correction", "experience")
FEEDBACK_STATES = ("pending", "used", "dismissed")
TURN_STATES = ("ok", "cancelled", "error")
MAX_FEEDBACK_CHARS = 20_000
"""A correction or an experience is a paragraph or a page, not a book."""


def new_turn_id() -> str:
    return f"chatcmpl-{secrets.token_hex(12)}"


def new_session_id() -> str:
    return f"s-{secrets.token_hex(6)}"


@dataclass
class TurnLog:
    """One exchange, with everything that produced the answer."""

    id: str
    session: str
    mode: str
    run_id: str
    prompt: str
    """The user's question."""
    rendered_prompt: str
    """The full text the model was given."""
    answer: str
    created_at: float = field(default_factory=time.time)
    base_model: str = ""
    layout: str = ""
    category: str | None = None
    language: str | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    """The conversation as the client sent it (server requests)."""
    retrieved: list[dict[str, Any]] = field(default_factory=list)
    """The notes in the prompt: chunk id, source, heading, score, citation."""
    settings: dict[str, Any] = field(default_factory=dict)
    reasoning: str | None = None
    finish_reason: str | None = None
    status: str = "ok"
    error: str | None = None
    latency_s: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    client: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_JSON_FIELDS = ("messages", "retrieved", "settings")


def log_turn(conn: sqlite3.Connection, turn: TurnLog) -> None:
    """Store ``turn`` (once: a second call with the same id is an error, not a duplicate)."""
    if turn.status not in TURN_STATES:
        raise ValueError(f"turn status must be one of {TURN_STATES}, not {turn.status!r}")
    data = turn.to_dict()
    for name in _JSON_FIELDS:
        data[name] = json.dumps(data[name], ensure_ascii=False)
    columns = ", ".join(data)
    marks = ", ".join(f":{name}" for name in data)
    with transaction(conn):
        conn.execute(f"INSERT INTO chat_turns ({columns}) VALUES ({marks})", data)


def _turn_from_row(row: sqlite3.Row) -> TurnLog:
    data = dict(row)
    for name in _JSON_FIELDS:
        data[name] = json.loads(data[name] or ("{}" if name == "settings" else "[]"))
    return TurnLog(**data)


def get_turn(conn: sqlite3.Connection, turn_id: str) -> TurnLog | None:
    row = conn.execute("SELECT * FROM chat_turns WHERE id = ?", (turn_id,)).fetchone()
    return _turn_from_row(row) if row else None


def list_turns(
    conn: sqlite3.Connection, *, limit: int | None = 20, session: str | None = None
) -> list[TurnLog]:
    """The newest ``limit`` turns (all with None), oldest first."""
    sql = "SELECT * FROM chat_turns"
    params: list[Any] = []
    if session is not None:
        sql += " WHERE session = ?"
        params.append(session)
    sql += " ORDER BY created_at DESC, rowid DESC"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return [_turn_from_row(row) for row in reversed(conn.execute(sql, params).fetchall())]


@dataclass
class Feedback:
    id: int
    turn_id: str | None
    kind: str
    text: str
    reason: str
    status: str
    used_by: str | None
    client: str
    created_at: float
    updated_at: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def add_feedback(
    conn: sqlite3.Connection,
    kind: str,
    *,
    turn_id: str | None = None,
    text: str = "",
    reason: str = "",
    client: str = "",
) -> Feedback:
    """Record feedback, committed before this returns. Raises :class:`BonsaiError` on bad input
    (an unknown kind or turn, a correction or experience without text)."""
    if kind not in FEEDBACK_KINDS:
        raise BonsaiError(
            f"feedback kind must be one of {', '.join(FEEDBACK_KINDS)}, not '{kind}'", field="kind"
        )
    text, reason = (text or "").strip(), (reason or "").strip()
    if kind in ("correction", "experience") and not text:
        what = "the better answer" if kind == "correction" else "what to remember"
        raise BonsaiError(f"a {kind} needs its text ({what})", field="text")
    if kind in ("good", "bad", "correction") and not turn_id:
        raise BonsaiError(f"a '{kind}' rating needs the turn it is about", field="turn_id")
    for name, value in (("text", text), ("reason", reason)):
        if len(value) > MAX_FEEDBACK_CHARS:
            raise BonsaiError(f"{name} is longer than {MAX_FEEDBACK_CHARS} characters", field=name)
    now = time.time()
    with transaction(conn):
        if turn_id is not None and get_turn(conn, turn_id) is None:
            raise BonsaiError(f"no chat turn '{turn_id}'", field="turn_id")
        cursor = conn.execute(
            "INSERT INTO chat_feedback (turn_id, kind, text, reason, status, client, created_at,"
            " updated_at) VALUES (?, ?, ?, ?, 'pending', ?, ?, ?)",
            (turn_id, kind, text, reason, client, now, now),
        )
        feedback_id = int(cursor.lastrowid or 0)
    return Feedback(feedback_id, turn_id, kind, text, reason, "pending", None, client, now, now)


def withdraw_ratings(conn: sqlite3.Connection, turn_id: str) -> int:
    """Delete the pending good/bad ratings of a turn (a new rating replaces them); ratings the
    grow stage has used stay. Returns how many were withdrawn."""
    with transaction(conn):
        cursor = conn.execute(
            "DELETE FROM chat_feedback WHERE turn_id = ? AND kind IN ('good', 'bad')"
            " AND status = 'pending'",
            (turn_id,),
        )
    return cursor.rowcount


def _feedback_from_row(row: sqlite3.Row) -> Feedback:
    return Feedback(**dict(row))


def feedback_for(conn: sqlite3.Connection, turn_ids: list[str]) -> dict[str, list[Feedback]]:
    """Feedback on each of ``turn_ids``, oldest first."""
    out: dict[str, list[Feedback]] = {t: [] for t in turn_ids}
    for start in range(0, len(turn_ids), 500):
        chunk = turn_ids[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        rows = conn.execute(
            f"SELECT * FROM chat_feedback WHERE turn_id IN ({marks}) ORDER BY id", chunk
        )
        for row in rows:
            out[row["turn_id"]].append(_feedback_from_row(row))
    return out


def pending_feedback(
    conn: sqlite3.Connection, kinds: tuple[str, ...] = FEEDBACK_KINDS
) -> list[tuple[Feedback, TurnLog | None]]:
    """Feedback the grow stage has not used yet, oldest first, each with its turn."""
    marks = ", ".join("?" for _ in kinds)
    rows = conn.execute(
        f"SELECT * FROM chat_feedback WHERE status = 'pending' AND kind IN ({marks}) ORDER BY id",
        kinds,
    ).fetchall()
    out = []
    for row in rows:
        item = _feedback_from_row(row)
        out.append((item, get_turn(conn, item.turn_id) if item.turn_id else None))
    return out


def mark_feedback(
    conn: sqlite3.Connection, ids: list[int], status: str, *, used_by: str | None = None
) -> None:
    """Move feedback to ``used`` (naming what consumed it) or ``dismissed``, in one transaction."""
    if status not in FEEDBACK_STATES:
        raise ValueError(f"status must be one of {FEEDBACK_STATES}, not {status!r}")
    now = time.time()
    with transaction(conn):
        conn.executemany(
            "UPDATE chat_feedback SET status = ?, used_by = ?, updated_at = ? WHERE id = ?",
            [(status, used_by, now, i) for i in ids],
        )
