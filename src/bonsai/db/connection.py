"""Opening the garden database the same way everywhere.

A writer waits for another writer's lock up to :func:`busy_timeout` seconds (default
:data:`BUSY_TIMEOUT_S`, ``BONSAI_DB_TIMEOUT`` overrides it), then gets :class:`DatabaseBusy`: one
clear message in the CLI, and a type a server can answer with 503 and Retry-After. A file that
is not a SQLite database, or a damaged one, is a :class:`~bonsai.errors.BonsaiError` naming it.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bonsai.env import DB_TIMEOUT
from bonsai.errors import BonsaiError, DatabaseBusy

BUSY_TIMEOUT_S = 120.0
"""How long a command waits for another one's write lock. An import of a big file or the end
of a teach run holds it for seconds; a command that waits longer than this is told so."""

_DAMAGED_HINT = "restore garden.db from a backup, or start a new garden and import your exports"


def busy_timeout() -> float:
    """Seconds to wait for a lock: ``BONSAI_DB_TIMEOUT`` when set, else BUSY_TIMEOUT_S."""
    raw = DB_TIMEOUT.get("").strip()
    if not raw:
        return BUSY_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        raise BonsaiError(
            f"BONSAI_DB_TIMEOUT={raw!r} is not a number of seconds", field="BONSAI_DB_TIMEOUT"
        ) from None
    if value < 0:
        raise BonsaiError("BONSAI_DB_TIMEOUT must be 0 or more seconds")
    return value


def is_busy(exc: BaseException) -> bool:
    """Whether a sqlite3 error means another connection holds the lock."""
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def busy_error(waited: float, path: str | Path | None = None) -> DatabaseBusy:
    return DatabaseBusy(
        f"the garden database is busy: another command has been writing to it for over"
        f" {waited:g} s; nothing was written",
        file=path,
        hint="run this again when that command has finished (BONSAI_DB_TIMEOUT sets the wait"
        " in seconds)",
        waited=waited,
    )


def database_error(exc: sqlite3.Error, path: str | Path | None = None) -> BonsaiError | None:
    """The user-facing error for a sqlite3 error the user can act on, else None (a bug).

    Busy (another writer), a damaged file or one that is not a database, and the file system
    refusing (read-only, full, no such folder) are the user's to act on; a constraint failure is
    BONSAI's own mistake and keeps its traceback.
    """
    text = str(exc)
    if is_busy(exc):
        return busy_error(busy_timeout(), path)
    if isinstance(exc, sqlite3.OperationalError) and any(
        reason in text.lower() for reason in _FILE_SYSTEM_REASONS
    ):
        return BonsaiError(f"cannot use the garden database ({text})", file=path)
    if type(exc) is sqlite3.DatabaseError:  # "file is not a database", "malformed"
        return BonsaiError(
            f"the garden database is damaged or not a SQLite database ({text})",
            file=path,
            hint=_DAMAGED_HINT,
        )
    return None


_FILE_SYSTEM_REASONS = ("unable to open", "readonly", "disk is full", "disk i/o", "read-only")


def connect(
    path: str | Path, *, migrate_schema: bool = True, timeout: float | None = None
) -> sqlite3.Connection:
    """Open the database with WAL, foreign keys and a busy timeout; bring its schema up to date.

    ``timeout``: seconds a write waits for another writer (default :func:`busy_timeout`).
    """
    wait = busy_timeout() if timeout is None else timeout
    try:
        conn = sqlite3.connect(
            str(path), timeout=wait, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise database_error(exc, path) or exc from None
    try:
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA busy_timeout={int(wait * 1000)}")
        if migrate_schema:
            from bonsai.db.migrations import migrate

            migrate(conn)
    except sqlite3.Error as exc:
        conn.close()
        raise database_error(exc, path) or exc from None
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One atomic unit of work: everything inside commits together or not at all.

    Nested use joins the outer transaction (a savepoint), so helpers can open one freely.
    Waiting too long for the write lock raises :class:`~bonsai.errors.DatabaseBusy`.
    """
    if conn.in_transaction:
        name = f"sp_{next(_savepoint_names)}"
        conn.execute(f"SAVEPOINT {name}")
        try:
            yield conn
        except BaseException:
            conn.execute(f"ROLLBACK TO {name}")
            conn.execute(f"RELEASE {name}")
            raise
        conn.execute(f"RELEASE {name}")
        return
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if not is_busy(exc):
            raise
        raise busy_error(conn.execute("PRAGMA busy_timeout").fetchone()[0] / 1000) from None
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


_savepoint_names = itertools.count(1)
