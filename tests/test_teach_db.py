"""The teach stage's tables: added by their own migration to a blank or an older database."""

from __future__ import annotations

from pathlib import Path

from bonsai.db import applied_migrations, connect, migrate


def _tables(conn) -> set[str]:  # type: ignore[no-untyped-def]
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_blank_database_gets_teacher_tables(tmp_path: Path) -> None:
    conn = connect(tmp_path / "blank.db")
    assert {"teacher_cache", "teacher_calls", "teacher_runs"} <= _tables(conn)
    assert "m005_teacher_calls" in applied_migrations(conn)


def test_older_database_is_upgraded_with_its_records_kept(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    conn = connect(db, migrate_schema=False)
    migrate(conn, upto="m004_splits")
    conn.execute("INSERT INTO datasets (name, created_at) VALUES ('old', 0)")
    conn.execute(
        "INSERT INTO records (dataset_id, id, position, instruction, created_at, updated_at)"
        " VALUES (1, 'r1', 0, 'Hello', 0, 0)"
    )
    assert "teacher_cache" not in _tables(conn)
    conn.close()
    conn = connect(db)
    assert {"teacher_cache", "teacher_calls", "teacher_runs"} <= _tables(conn)
    assert conn.execute("SELECT instruction FROM records").fetchone()[0] == "Hello"
