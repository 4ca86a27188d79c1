"""Grow rounds in the garden database (table ``grow_rounds``, migration m010).

A round moves through stages, each recorded the moment it is finished, so that a grow killed
at any point is resumed by the next ``bonsai grow`` where it stopped:

``ingested`` → ``taught`` → ``trained`` → ``evaluated`` → ``done``

The round row is created in the same transaction that writes its records and marks its
feedback used (see :func:`bonsai.grow.feedback_to_records.ingest`): either all of it exists, or
none of it does.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Any

from bonsai.db.connection import transaction

STAGES: tuple[str, ...] = ("ingested", "taught", "trained", "evaluated", "done")


def new_round_id() -> str:
    return f"grow-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


@dataclass
class GrowRound:
    id: str
    dataset: str
    stage: str
    current_run: str
    """The run the round grows from ('base' when the garden had none)."""
    new_run: str | None = None
    records: list[str] = field(default_factory=list)
    feedback: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    decision: dict[str, Any] | None = None
    promoted: bool = False
    report: str | None = None
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)

    @property
    def finished(self) -> bool:
        return self.stage == "done"

    def reached(self, stage: str) -> bool:
        """Whether ``stage`` is finished in this round."""
        return STAGES.index(self.stage) >= STAGES.index(stage)


def save_round(conn: sqlite3.Connection, round_: GrowRound) -> None:
    """Store a round, new or changed (inside the caller's transaction, if any)."""
    round_.updated_at = time.time()
    with transaction(conn):
        conn.execute(
            "INSERT OR REPLACE INTO grow_rounds (id, dataset, stage, current_run, new_run,"
            " records, feedback, notes, settings, decision, promoted, report, created_at,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                round_.id,
                round_.dataset,
                round_.stage,
                round_.current_run,
                round_.new_run,
                json.dumps(round_.records, ensure_ascii=False),
                json.dumps(round_.feedback),
                json.dumps(round_.notes, ensure_ascii=False),
                json.dumps(round_.settings, ensure_ascii=False, default=str),
                json.dumps(round_.decision, ensure_ascii=False) if round_.decision else None,
                int(round_.promoted),
                round_.report,
                round_.created_at,
                round_.updated_at,
            ),
        )


def advance(conn: sqlite3.Connection, round_: GrowRound, stage: str, **values: Any) -> None:
    """Record that ``stage`` is finished, with what it produced (``new_run``, ``decision``, …)."""
    if stage not in STAGES:
        raise ValueError(f"unknown grow stage {stage!r}")
    round_.stage = stage
    round_.updated_at = time.time()
    for name, value in values.items():
        setattr(round_, name, value)
    columns: dict[str, Any] = {"stage": stage, "updated_at": round_.updated_at}
    for name, value in values.items():
        if name == "decision":
            value = json.dumps(value, ensure_ascii=False, default=str) if value else None
        elif name == "promoted":
            value = int(bool(value))
        columns[name] = value
    assignments = ", ".join(f"{name} = ?" for name in columns)
    with transaction(conn):
        conn.execute(
            f"UPDATE grow_rounds SET {assignments} WHERE id = ?", (*columns.values(), round_.id)
        )


def _from_row(row: sqlite3.Row) -> GrowRound:
    data = dict(row)
    for name in ("records", "feedback", "notes"):
        data[name] = json.loads(data[name] or "[]")
    data["settings"] = json.loads(data["settings"] or "{}")
    data["decision"] = json.loads(data["decision"]) if data["decision"] else None
    data["promoted"] = bool(data["promoted"])
    return GrowRound(**data)


def unfinished_round(conn: sqlite3.Connection) -> GrowRound | None:
    """The oldest round that stopped before ``done``, if any."""
    row = conn.execute(
        "SELECT * FROM grow_rounds WHERE stage != 'done' ORDER BY created_at, rowid LIMIT 1"
    ).fetchone()
    return _from_row(row) if row else None


def list_rounds(conn: sqlite3.Connection) -> list[GrowRound]:
    """Every round, oldest first."""
    rows = conn.execute("SELECT * FROM grow_rounds ORDER BY created_at, rowid").fetchall()
    return [_from_row(row) for row in rows]
