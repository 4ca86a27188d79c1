"""Chat turns are logged even while another program holds the garden's database.

The model thread writes each turn itself; when the database stays locked for the server's
``db_wait_s`` (another ``bonsai`` command in a long write), the turn goes to a queue instead and
a background thread retries until the database is free. The client gets its answer either way;
feedback about a turn still waiting is answered 503 with Retry-After. A turn still unwritten
when the server stops is appended to ``chat-turns-unwritten.jsonl`` beside the database, never
dropped.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import sys
import threading
import time
from collections import deque
from pathlib import Path

from bonsai.chat import store

SPILL_NAME = "chat-turns-unwritten.jsonl"


def is_locked(exc: BaseException) -> bool:
    """True for SQLite's 'database is locked' / 'database is busy' (another writer)."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def set_wait(conn: sqlite3.Connection, seconds: float) -> None:
    """How long a write on ``conn`` waits for another writer before it fails as locked."""
    conn.execute(f"PRAGMA busy_timeout = {max(0, int(seconds * 1000))}")


class TurnLogWriter:
    """Writes turns now if it can, later if the database is locked."""

    def __init__(self, db_path: str | Path, *, retry_s: float = 1.0) -> None:
        self.db_path = Path(db_path)
        self.retry_s = retry_s
        self._pending: deque[store.TurnLog] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bonsai-turn-log", daemon=True)

    # -- the model thread's side ---------------------------------------------------------------

    def write(self, conn: sqlite3.Connection, turn: store.TurnLog) -> None:
        """Log ``turn`` on ``conn``; if the database is locked, queue it for the writer."""
        if not self.waiting_count():
            try:
                store.log_turn(conn, turn)
                return
            except sqlite3.OperationalError as exc:
                if not is_locked(exc):
                    raise
        self.defer(turn)  # behind the queue too, so that turns keep their order

    def defer(self, turn: store.TurnLog) -> None:
        """Queue ``turn`` for the background writer."""
        with self._lock:
            self._pending.append(turn)
        self._wake.set()

    def waiting(self, turn_id: str) -> bool:
        with self._lock:
            return any(t.id == turn_id for t in self._pending)

    def waiting_count(self) -> int:
        with self._lock:
            return len(self._pending)

    # -- the background writer -----------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Write what waits (trying for ``timeout`` seconds), then spill the rest to a file."""
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._spill()

    def _loop(self) -> None:
        from bonsai.db import connect

        conn: sqlite3.Connection | None = None
        try:
            while not (self._stopping.is_set() and not self.waiting_count()):
                self._wake.wait(self.retry_s)
                self._wake.clear()
                if not self.waiting_count():
                    continue
                try:
                    if conn is None:
                        conn = connect(self.db_path, migrate_schema=False)
                        set_wait(conn, self.retry_s)
                    self._flush(conn)
                except sqlite3.OperationalError as exc:
                    if not is_locked(exc):
                        print(f"error: cannot log chat turns: {exc}", file=sys.stderr)
                    if self._stopping.is_set():
                        return
                    time.sleep(self.retry_s)
        finally:
            if conn is not None:
                conn.close()

    def _flush(self, conn: sqlite3.Connection) -> None:
        while True:
            with self._lock:
                if not self._pending:
                    return
                turn = self._pending[0]
            # Already there (written before a failure of this loop): not a duplicate.
            with contextlib.suppress(sqlite3.IntegrityError):
                store.log_turn(conn, turn)
            with self._lock:
                self._pending.popleft()

    def _spill(self) -> None:
        with self._lock:
            left = list(self._pending)
            self._pending.clear()
        if not left:
            return
        path = self.db_path.with_name(SPILL_NAME)
        with path.open("a", encoding="utf-8") as out:
            for turn in left:
                out.write(json.dumps(turn.to_dict(), ensure_ascii=False) + "\n")
        print(
            f"warning: the database stayed locked; {len(left)} chat turn(s) were saved to {path}",
            file=sys.stderr,
        )
