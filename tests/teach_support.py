"""Helpers shared by the teach tests: records in a garden, fast settings, one-call runs."""

from __future__ import annotations

import json
import socket
from typing import Any

from bonsai.garden import Garden
from bonsai.records import Record
from bonsai.store import Change, RecordStore
from bonsai.teach.args import TeachArgs
from bonsai.teach.backends import make_teacher
from bonsai.teach.runner import TeachSummary, teach

CATEGORIES = ("open_qa", "closed_qa", "brainstorming", "classification")


def make_records(n: int, *, prefix: str = "Record") -> list[Record]:
    """``n`` distinct English records across unique and creative categories."""
    records = []
    for i in range(n):
        category = CATEGORIES[i % len(CATEGORIES)]
        records.append(
            Record(
                id=f"r{i:03d}",
                instruction=f"{prefix} {i}: what does Mochi the cat like to do on day {i}?",
                input="Mochi sleeps in the sun and chases a feather toy." if i % 2 else "",
                output=f"On day {i} Mochi likes to nap by the window and then play.",
                category=category,
                language="en",
            )
        )
    return records


def add_records(garden: Garden, dataset: str, records: list[Record]) -> None:
    RecordStore(garden.db).apply(
        dataset, [Change(None, r) for r in records], kind="import", description="test records"
    )


def openai_args(dataset: str, url: str, **overrides: Any) -> TeachArgs:
    """Settings for a test against the scripted server: short timeouts, tiny backoff."""
    values: dict[str, Any] = {
        "backend": "openai",
        "base_url": url,
        "model": "scripted",
        "concurrency": 4,
        "backoff": 0.01,
        "backoff_max": 0.05,
        "timeout": 2.0,
    }
    values.update(overrides)
    return TeachArgs(dataset=dataset, **values)


def run_teach(garden: Garden, args: TeachArgs) -> TeachSummary:
    return teach(garden, args, make_teacher(args, garden.config))


def calls(garden: Garden, **where: Any) -> list[dict[str, Any]]:
    sql = "SELECT * FROM teacher_calls"
    if where:
        sql += " WHERE " + " AND ".join(f"{k} = ?" for k in where)
    rows = garden.db.execute(sql + " ORDER BY id", tuple(where.values()))
    return [dict(row) for row in rows]


def reasonings(garden: Garden, dataset: str) -> dict[str, str | None]:
    return {r.id: r.reasoning for r in RecordStore(garden.db).records(dataset)}


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dump(records: list[Record]) -> str:
    return "\n".join(json.dumps(r.to_dict(), ensure_ascii=False) for r in records)
