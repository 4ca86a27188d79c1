"""The teacher's cache and call log, in the garden database.

A reasoning is cached under a hash of everything that decides it: the template (with what it
includes), the backend, the model, the language policy and the record's content (instruction,
input, output, category, language). A second run finds it and sends no request; a run killed at
any moment finds every answer it had committed. Every call, good or bad, is logged.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from bonsai.db import transaction
from bonsai.records import Record

_CHUNK = 500  # SQLite allows a limited number of parameters per statement


def cache_key(
    *, template_hash: str, backend: str, model: str, language_policy: str, record: Record
) -> str:
    """The hash that names one record's reasoning under one teacher setup."""
    parts = [
        template_hash,
        backend,
        model,
        language_policy,
        record.instruction,
        record.input,
        record.output,
        record.category or "",
        record.language or "",
    ]
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode()).hexdigest()[:32]


@dataclass
class CacheEntry:
    key: str
    reasoning: str
    meta: dict[str, Any]


@dataclass
class CallLog:
    """One request to the teacher, as the log keeps it."""

    record_id: str
    cache_key: str
    attempt: int
    prompt: str
    answer: str | None
    status: str
    """'ok' (valid answer), 'invalid' (answer rejected, reason in ``error``), 'error' (failed)."""
    error: str | None
    latency_s: float
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    created_at: float = 0.0


class TeachCache:
    """Cache lookups and writes; each write is one small transaction (cheap: WAL, no fsync)."""

    def __init__(self, conn: sqlite3.Connection, *, dataset: str, run_id: str) -> None:
        self.conn = conn
        self.dataset = dataset
        self.run_id = run_id

    def lookup(self, keys: Sequence[str]) -> dict[str, CacheEntry]:
        found: dict[str, CacheEntry] = {}
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            rows = self.conn.execute(
                "SELECT key, reasoning, meta FROM teacher_cache"
                f" WHERE key IN ({', '.join('?' * len(chunk))})",
                chunk,
            )
            for key, reasoning, meta in rows:
                found[key] = CacheEntry(key, reasoning, json.loads(meta))
        return found

    def commit(
        self,
        calls: Iterable[CallLog],
        *,
        backend: str,
        model: str,
        entry: CacheEntry | None = None,
        record_id: str | None = None,
    ) -> None:
        """Log ``calls`` and, for a success, store ``entry``: all or nothing."""
        now = time.time()
        rows = [
            (
                self.run_id,
                self.dataset,
                c.record_id,
                c.cache_key,
                backend,
                model,
                c.attempt,
                c.prompt,
                c.answer,
                c.status,
                c.error,
                c.latency_s,
                c.prompt_tokens,
                c.completion_tokens,
                c.created_at or now,
            )
            for c in calls
        ]
        with transaction(self.conn):
            self.conn.executemany(
                "INSERT INTO teacher_calls (run_id, dataset, record_id, cache_key, backend, model,"
                " attempt, prompt, answer, status, error, latency_s, prompt_tokens,"
                f" completion_tokens, created_at) VALUES ({', '.join('?' * 15)})",
                rows,
            )
            if entry is not None:
                self.conn.execute(
                    "INSERT OR REPLACE INTO teacher_cache"
                    " (key, reasoning, meta, record_id, dataset, run_id, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        entry.key,
                        entry.reasoning,
                        json.dumps(entry.meta, ensure_ascii=False, sort_keys=True),
                        record_id or "",
                        self.dataset,
                        self.run_id,
                        now,
                    ),
                )

    # -- runs -----------------------------------------------------------------------------------

    def start_run(self, *, backend: str, model: str, settings: dict[str, Any]) -> None:
        with transaction(self.conn):
            self.conn.execute(
                "INSERT INTO teacher_runs (id, dataset, backend, model, settings, started_at,"
                " status) VALUES (?, ?, ?, ?, ?, ?, 'running')",
                (
                    self.run_id,
                    self.dataset,
                    backend,
                    model,
                    json.dumps(settings, ensure_ascii=False, sort_keys=True),
                    time.time(),
                ),
            )

    def finish_run(self, status: str, summary: dict[str, Any]) -> None:
        with transaction(self.conn):
            self.conn.execute(
                "UPDATE teacher_runs SET finished_at = ?, status = ?, summary = ? WHERE id = ?",
                (time.time(), status, json.dumps(summary, ensure_ascii=False), self.run_id),
            )
