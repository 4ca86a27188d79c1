"""Append-only, named schema migrations.

Each migration is a function named ``mNNN_what_it_does`` registered with ``@migration``. Once a
migration has shipped it is never edited: a change to the schema is a new migration at the end.
The names of applied migrations are kept in the ``_migrations`` table.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

Migration = Callable[[sqlite3.Connection], None]
MIGRATIONS: list[tuple[str, Migration]] = []


def run_script(conn: sqlite3.Connection, script: str) -> None:
    """Run SQL statements one by one inside the caller's transaction.

    (``executescript`` would commit first, which breaks the all-or-nothing migration.)
    """
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            conn.execute(statement)
            statement = ""
    if statement.strip():
        raise ValueError(f"incomplete SQL statement in migration: {statement!r}")


def migration(fn: Migration) -> Migration:
    MIGRATIONS.append((fn.__name__, fn))
    return fn


def applied_migrations(conn: sqlite3.Connection) -> list[str]:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)"
    )
    return [row[0] for row in conn.execute("SELECT name FROM _migrations ORDER BY rowid")]


def migrate(conn: sqlite3.Connection, *, upto: str | None = None) -> list[str]:
    """Apply every migration not yet applied (or those up to and including ``upto``)."""
    done = set(applied_migrations(conn))
    newly: list[str] = []
    for name, fn in MIGRATIONS:
        if name not in done:
            conn.execute("BEGIN IMMEDIATE")
            try:
                fn(conn)
                conn.execute(
                    "INSERT INTO _migrations (name, applied_at) VALUES (?, ?)", (name, time.time())
                )
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            newly.append(name)
        if upto is not None and name == upto:
            break
    return newly


@migration
def m001_datasets_and_records(conn: sqlite3.Connection) -> None:
    run_script(
        conn,
        """
        CREATE TABLE datasets (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            created_at REAL NOT NULL
        );
        CREATE TABLE records (
            dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
            id TEXT NOT NULL,
            position INTEGER NOT NULL,
            instruction TEXT NOT NULL,
            input TEXT NOT NULL DEFAULT '',
            output TEXT NOT NULL DEFAULT '',
            category TEXT,
            language TEXT,
            reasoning TEXT,
            source_category TEXT,
            extra TEXT NOT NULL DEFAULT '{}',
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            PRIMARY KEY (dataset_id, id)
        );
        CREATE INDEX records_by_position ON records (dataset_id, position);
        """,
    )


@migration
def m002_history(conn: sqlite3.Connection) -> None:
    run_script(
        conn,
        """
        CREATE TABLE changesets (
            id INTEGER PRIMARY KEY,
            dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,
            description TEXT NOT NULL,
            summary TEXT NOT NULL DEFAULT '{}',
            created_at REAL NOT NULL,
            undone_by INTEGER REFERENCES changesets(id)
        );
        CREATE TABLE record_changes (
            id INTEGER PRIMARY KEY,
            changeset_id INTEGER NOT NULL REFERENCES changesets(id) ON DELETE CASCADE,
            record_id TEXT NOT NULL,
            before TEXT,
            after TEXT
        );
        CREATE INDEX record_changes_by_changeset ON record_changes (changeset_id);
        CREATE INDEX record_changes_by_record ON record_changes (record_id);
        """,
    )


@migration
def m003_annotation_provenance(conn: sqlite3.Connection) -> None:
    run_script(
        conn,
        """
        ALTER TABLE records ADD COLUMN category_source TEXT;
        ALTER TABLE records ADD COLUMN category_confidence REAL;
        ALTER TABLE records ADD COLUMN language_source TEXT;
        ALTER TABLE records ADD COLUMN reasoning_meta TEXT;
        """,
    )


@migration
def m004_splits(conn: sqlite3.Connection) -> None:
    run_script(
        conn,
        """
        ALTER TABLE records ADD COLUMN split TEXT;
        ALTER TABLE records ADD COLUMN shard INTEGER;
        CREATE TABLE splits (
            id INTEGER PRIMARY KEY,
            dataset_id INTEGER NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,
            settings TEXT NOT NULL,
            created_at REAL NOT NULL
        );
        """,
    )
