"""Jobs: long work started from the pages, kept in the garden's ``jobs`` table.

A job is queued by a page, claimed by the one worker process (:mod:`bonsai.web.worker`), and
ends finished, failed or interrupted. The database holds the truth, so a page reload or a server
restart shows where every job stands; the log of a job is a file under ``jobs/`` in the garden.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bonsai.db import transaction
from bonsai.errors import BonsaiError
from bonsai.util.process import pid_alive

KINDS = ("teach", "train", "eval", "grow")
STATES = ("queued", "running", "finished", "failed", "interrupted")
ACTIVE = ("queued", "running")


@dataclass
class Job:
    id: int
    kind: str
    title: str
    params: dict[str, Any]
    state: str
    progress: dict[str, Any]
    result: dict[str, Any]
    error: str | None
    stop_requested: bool
    worker_pid: int | None
    created_at: float
    started_at: float | None
    finished_at: float | None

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "title": self.title,
            "state": self.state,
            "progress": self.progress,
            "result": self.result,
            "error": self.error,
            "stop_requested": self.stop_requested,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }


def _from_row(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        kind=row["kind"],
        title=row["title"],
        params=json.loads(row["params"] or "{}"),
        state=row["state"],
        progress=json.loads(row["progress"] or "{}"),
        result=json.loads(row["result"] or "{}"),
        error=row["error"],
        stop_requested=bool(row["stop_requested"]),
        worker_pid=row["worker_pid"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
    )


def log_path(garden_root: Path, job_id: int) -> Path:
    return garden_root / "jobs" / f"{job_id}.log"


def enqueue(conn: sqlite3.Connection, kind: str, params: dict[str, Any], title: str = "") -> Job:
    if kind not in KINDS:
        raise BonsaiError(f"unknown job kind '{kind}'", hint=f"one of: {', '.join(KINDS)}")
    cur = conn.execute(
        "INSERT INTO jobs (kind, title, params, created_at) VALUES (?, ?, ?, ?)",
        (kind, title or kind, json.dumps(params, ensure_ascii=False), time.time()),
    )
    job = get(conn, int(cur.lastrowid or 0))
    assert job is not None
    return job


def get(conn: sqlite3.Connection, job_id: int) -> Job | None:
    row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return _from_row(row) if row else None


def list_jobs(conn: sqlite3.Connection, *, kind: str | None = None, limit: int = 50) -> list[Job]:
    """The newest jobs first."""
    sql, params = "SELECT * FROM jobs", list[Any]()
    if kind is not None:
        sql += " WHERE kind = ?"
        params.append(kind)
    sql += " ORDER BY id DESC LIMIT ?"
    params.append(limit)
    return [_from_row(r) for r in conn.execute(sql, params)]


def active(conn: sqlite3.Connection) -> list[Job]:
    rows = conn.execute("SELECT * FROM jobs WHERE state IN ('queued', 'running') ORDER BY id")
    return [_from_row(r) for r in rows]


def claim_next(conn: sqlite3.Connection, pid: int) -> Job | None:
    """Move the oldest queued job to running, for the worker ``pid``; None when none waits."""
    with transaction(conn):
        if conn.execute("SELECT 1 FROM jobs WHERE state = 'running'").fetchone():
            return None  # one at a time, even if a second worker were started by mistake
        row = conn.execute(
            "SELECT id FROM jobs WHERE state = 'queued' ORDER BY id LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        conn.execute(
            "UPDATE jobs SET state = 'running', worker_pid = ?, started_at = ? WHERE id = ?",
            (pid, time.time(), row[0]),
        )
    return get(conn, row[0])


def set_progress(conn: sqlite3.Connection, job_id: int, **progress: Any) -> None:
    conn.execute(
        "UPDATE jobs SET progress = ? WHERE id = ?",
        (json.dumps(progress, ensure_ascii=False, default=str), job_id),
    )


def finish(
    conn: sqlite3.Connection,
    job_id: int,
    state: str,
    *,
    result: dict[str, Any] | None = None,
    error: str | None = None,
) -> None:
    if state not in ("finished", "failed", "interrupted"):
        raise ValueError(f"not a final state: {state}")
    conn.execute(
        "UPDATE jobs SET state = ?, result = ?, error = ?, finished_at = ? WHERE id = ?",
        (
            state,
            json.dumps(result or {}, ensure_ascii=False, default=str),
            error,
            time.time(),
            job_id,
        ),
    )


def request_stop(conn: sqlite3.Connection, job_id: int) -> Job:
    """Ask a job to stop: a queued one is interrupted at once, a running one at its next safe
    point (training saves a checkpoint first)."""
    job = get(conn, job_id)
    if job is None:
        raise BonsaiError(f"no job {job_id}")
    if job.state == "queued":
        with transaction(conn):
            conn.execute(
                "UPDATE jobs SET state = 'interrupted', error = 'cancelled before it started',"
                " finished_at = ? WHERE id = ? AND state = 'queued'",
                (time.time(), job_id),
            )
    elif job.state == "running":
        conn.execute("UPDATE jobs SET stop_requested = 1 WHERE id = ?", (job_id,))
    return get(conn, job_id)  # type: ignore[return-value]


def stop_wanted(conn: sqlite3.Connection, job_id: int) -> bool:
    row = conn.execute("SELECT stop_requested FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return bool(row and row[0])


def mark_orphans(conn: sqlite3.Connection, *, alive=pid_alive) -> list[int]:
    """Jobs found running whose worker is gone (the server was killed): mark them interrupted,
    never leave them running. Returns their ids."""
    found = [
        (r["id"], r["worker_pid"])
        for r in conn.execute("SELECT id, worker_pid FROM jobs WHERE state = 'running'")
    ]
    gone = [job_id for job_id, pid in found if not alive(pid)]
    now = time.time()
    for job_id in gone:
        conn.execute(
            "UPDATE jobs SET state = 'interrupted', finished_at = ?,"
            " error = COALESCE(error, 'the worker stopped while this job ran (server restart)')"
            " WHERE id = ? AND state = 'running'",
            (now, job_id),
        )
    return gone
