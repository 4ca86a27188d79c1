"""Chat turns wait out a database held by another program, and are never lost."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager

from bonsai.chat import store
from bonsai.db import connect
from bonsai.garden import Garden
from bonsai.serve.turnlog import SPILL_NAME, TurnLogWriter, is_locked, set_wait


def a_turn(session: str = "s") -> store.TurnLog:
    return store.TurnLog(
        id=store.new_turn_id(), session=session, mode="answer", run_id="base",
        prompt="q", rendered_prompt="q", answer="a",
    )  # fmt: skip


@contextmanager
def held(garden: Garden) -> Iterator[None]:
    """Another program in a long write."""
    other = sqlite3.connect(garden.db_path, timeout=1, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


def logged(garden: Garden) -> list[str]:
    conn = connect(garden.db_path)
    try:
        return [t.id for t in store.list_turns(conn, limit=None)]
    finally:
        conn.close()


def test_a_turn_written_while_locked_is_logged_once_the_lock_goes(garden: Garden) -> None:
    conn = connect(garden.db_path)
    set_wait(conn, 0.1)
    writer = TurnLogWriter(garden.db_path, retry_s=0.1)
    writer.start()
    first, second = a_turn(), a_turn()
    try:
        with held(garden):
            writer.write(conn, first)
            writer.write(conn, second)
            assert writer.waiting(first.id) and writer.waiting(second.id)
            time.sleep(0.3)
            assert logged(garden) == []
        deadline = time.monotonic() + 10
        while writer.waiting_count() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert logged(garden) == [first.id, second.id]
    finally:
        writer.stop()
        conn.close()


def test_turns_still_waiting_at_stop_are_saved_to_a_file(garden: Garden) -> None:
    conn = connect(garden.db_path)
    set_wait(conn, 0.1)
    writer = TurnLogWriter(garden.db_path, retry_s=0.1)
    writer.start()
    turn = a_turn()
    try:
        with held(garden):
            writer.write(conn, turn)
            writer.stop(timeout=0.5)
    finally:
        conn.close()
    spilled = (garden.db_path.with_name(SPILL_NAME)).read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["id"] for line in spilled] == [turn.id]


def test_only_a_lock_counts_as_locked() -> None:
    assert is_locked(sqlite3.OperationalError("database is locked"))
    assert not is_locked(sqlite3.OperationalError("no such table: x"))
    assert not is_locked(ValueError("database is locked"))


def test_the_web_server_logs_turns_through_the_same_writer(garden: Garden, monkeypatch) -> None:
    """``bonsai ui`` answers through the same turn writer and waiting connections as serve."""
    from bonsai.serve.args import ServeArgs
    from bonsai.web.server import build_ui_state

    monkeypatch.setenv("BONSAI_EMBED_MODEL", "hashing")
    state = build_ui_state(garden, ServeArgs(host="127.0.0.1", port=0, db_wait_s=0.25))
    try:
        assert isinstance(state.turns, TurnLogWriter)
        assert state.session.log_turn == state.turns.write
        assert state.session.db_wait_s == 0.25
        wait_ms = state.feedback_conn.execute("PRAGMA busy_timeout").fetchone()[0]
        assert wait_ms == 250
    finally:
        state.feedback_conn.close()
