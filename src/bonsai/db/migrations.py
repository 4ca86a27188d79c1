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


@migration
def m005_teacher_calls(conn: sqlite3.Connection) -> None:
    """The teach stage: answers cached by content hash, every call logged, one row per run."""
    run_script(
        conn,
        """
        CREATE TABLE teacher_cache (
            key TEXT PRIMARY KEY,
            reasoning TEXT NOT NULL,
            meta TEXT NOT NULL,
            record_id TEXT NOT NULL,
            dataset TEXT NOT NULL,
            run_id TEXT NOT NULL,
            created_at REAL NOT NULL
        );
        CREATE TABLE teacher_calls (
            id INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL,
            dataset TEXT NOT NULL,
            record_id TEXT NOT NULL,
            cache_key TEXT NOT NULL,
            backend TEXT NOT NULL,
            model TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            prompt TEXT NOT NULL,
            answer TEXT,
            status TEXT NOT NULL,
            error TEXT,
            latency_s REAL,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            created_at REAL NOT NULL
        );
        CREATE INDEX teacher_calls_by_run ON teacher_calls (run_id);
        CREATE INDEX teacher_calls_by_record ON teacher_calls (dataset, record_id);
        CREATE TABLE teacher_runs (
            id TEXT PRIMARY KEY,
            dataset TEXT NOT NULL,
            backend TEXT NOT NULL,
            model TEXT NOT NULL,
            settings TEXT NOT NULL,
            started_at REAL NOT NULL,
            finished_at REAL,
            status TEXT NOT NULL,
            summary TEXT NOT NULL DEFAULT '{}'
        );
        """,
    )


@migration
def m006_knowledge_base(conn: sqlite3.Connection) -> None:
    """Notes for retrieval: documents, their chunks, a full-text index and embeddings.

    The full-text index holds chunk text with CJK runs spelled out as character bigrams (see
    ``bonsai.rag.text``), its rowid is the chunk id. Embeddings are keyed by chunk content hash and
    model name, so unchanged text is never embedded twice. ``knowledge_state.generation`` changes
    with every chunk or embedding written, so a process can tell when its in-memory vectors are
    stale.
    """
    run_script(
        conn,
        """
        CREATE TABLE knowledge_documents (
            id INTEGER PRIMARY KEY,
            source TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            title TEXT NOT NULL DEFAULT '',
            content_hash TEXT NOT NULL,
            added_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE TABLE knowledge_chunks (
            id INTEGER PRIMARY KEY,
            document_id INTEGER NOT NULL REFERENCES knowledge_documents(id) ON DELETE CASCADE,
            ordinal INTEGER NOT NULL,
            anchor TEXT,
            heading TEXT NOT NULL DEFAULT '',
            text TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            UNIQUE (document_id, ordinal)
        );
        CREATE INDEX knowledge_chunks_by_hash ON knowledge_chunks (content_hash);
        CREATE VIRTUAL TABLE knowledge_fts USING fts5(
            heading, body, tokenize = 'porter unicode61 remove_diacritics 2'
        );
        CREATE TABLE knowledge_embeddings (
            id INTEGER PRIMARY KEY,
            model TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            dim INTEGER NOT NULL,
            vector BLOB NOT NULL,
            created_at REAL NOT NULL,
            UNIQUE (model, content_hash)
        );
        CREATE TABLE knowledge_state (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            generation INTEGER NOT NULL
        );
        INSERT INTO knowledge_state (id, generation) VALUES (1, 0);
        CREATE TRIGGER knowledge_chunks_added AFTER INSERT ON knowledge_chunks BEGIN
            UPDATE knowledge_state SET generation = generation + 1 WHERE id = 1;
        END;
        CREATE TRIGGER knowledge_chunks_removed AFTER DELETE ON knowledge_chunks BEGIN
            UPDATE knowledge_state SET generation = generation + 1 WHERE id = 1;
        END;
        CREATE TRIGGER knowledge_embeddings_added AFTER INSERT ON knowledge_embeddings BEGIN
            UPDATE knowledge_state SET generation = generation + 1 WHERE id = 1;
        END;
        CREATE TRIGGER knowledge_embeddings_removed AFTER DELETE ON knowledge_embeddings BEGIN
            UPDATE knowledge_state SET generation = generation + 1 WHERE id = 1;
        END;
        """,
    )


@migration
def m007_evaluations(conn: sqlite3.Connection) -> None:
    """The evaluate stage: one row per evaluation (the report files hold the details)."""
    run_script(
        conn,
        """
        CREATE TABLE evaluations (
            id INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL,
            against TEXT NOT NULL DEFAULT '',
            kind TEXT NOT NULL,
            report TEXT NOT NULL,
            summary TEXT NOT NULL DEFAULT '{}',
            created_at REAL NOT NULL
        );
        CREATE INDEX evaluations_by_run ON evaluations (run_id);
        """,
    )


@migration
def m008_chat_turns_and_feedback(conn: sqlite3.Connection) -> None:
    """Chat: every exchange with its full context, and the feedback that the grow stage consumes.

    A turn's id is also the id of the OpenAI-style completion, so a client can send feedback on
    it. ``status`` is 'ok', 'cancelled' (the client stopped reading; ``answer`` holds what it was
    sent) or 'error'. Feedback ``kind``: 'good' or 'bad' (a rating, with a reason), 'correction'
    (a better answer in ``text``) or 'experience' (something to remember, in ``text``); grow moves
    ``status`` from 'pending' to 'used' (naming what it made in ``used_by``) or 'dismissed'.
    """
    run_script(
        conn,
        """
        CREATE TABLE chat_turns (
            id TEXT PRIMARY KEY,
            session TEXT NOT NULL,
            created_at REAL NOT NULL,
            mode TEXT NOT NULL,
            run_id TEXT NOT NULL,
            base_model TEXT NOT NULL DEFAULT '',
            layout TEXT NOT NULL DEFAULT '',
            category TEXT,
            language TEXT,
            prompt TEXT NOT NULL,
            rendered_prompt TEXT NOT NULL,
            messages TEXT NOT NULL DEFAULT '[]',
            retrieved TEXT NOT NULL DEFAULT '[]',
            settings TEXT NOT NULL DEFAULT '{}',
            answer TEXT NOT NULL,
            reasoning TEXT,
            finish_reason TEXT,
            status TEXT NOT NULL DEFAULT 'ok',
            error TEXT,
            latency_s REAL,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            client TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX chat_turns_by_time ON chat_turns (created_at);
        CREATE INDEX chat_turns_by_session ON chat_turns (session, created_at);
        CREATE TABLE chat_feedback (
            id INTEGER PRIMARY KEY,
            turn_id TEXT REFERENCES chat_turns(id) ON DELETE SET NULL,
            kind TEXT NOT NULL CHECK (kind IN ('good', 'bad', 'correction', 'experience')),
            text TEXT NOT NULL DEFAULT '',
            reason TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'used', 'dismissed')),
            used_by TEXT,
            client TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE INDEX chat_feedback_by_status ON chat_feedback (status, kind);
        CREATE INDEX chat_feedback_by_turn ON chat_feedback (turn_id);
        """,
    )


@migration
def m009_training_runs(conn: sqlite3.Connection) -> None:
    """The train stage: one row per run, an index of the ``runs/<id>/`` folders.

    The folder (manifest, adapter, metrics) is the source of truth; this table lets other stages
    list runs, follow a run's parents, and find the one promoted for chat and serving.
    """
    run_script(
        conn,
        """
        CREATE TABLE training_runs (
            id TEXT PRIMARY KEY,
            dataset TEXT NOT NULL,
            shard INTEGER,
            status TEXT NOT NULL,
            parent TEXT,
            layout TEXT NOT NULL,
            base_model TEXT NOT NULL,
            created_at REAL NOT NULL,
            finished_at REAL,
            summary TEXT NOT NULL DEFAULT '{}',
            promoted INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX training_runs_by_dataset ON training_runs (dataset, created_at);
        """,
    )


@migration
def m010_grow_rounds(conn: sqlite3.Connection) -> None:
    """The grow stage: one row per round (feedback → records → teach → train → evaluate →
    promote), so that a round stopped at any point is resumed where it stopped.

    ``stage`` is the last step finished: 'ingested' (records, notes and feedback marks committed
    together), 'taught', 'trained', 'evaluated', 'done'. ``records``, ``feedback`` and ``notes``
    are JSON lists of what the round made and used; ``decision`` the promotion verdict (JSON).
    """
    run_script(
        conn,
        """
        CREATE TABLE grow_rounds (
            id TEXT PRIMARY KEY,
            dataset TEXT NOT NULL,
            stage TEXT NOT NULL,
            current_run TEXT NOT NULL,
            new_run TEXT,
            records TEXT NOT NULL DEFAULT '[]',
            feedback TEXT NOT NULL DEFAULT '[]',
            notes TEXT NOT NULL DEFAULT '[]',
            settings TEXT NOT NULL DEFAULT '{}',
            decision TEXT,
            promoted INTEGER NOT NULL DEFAULT 0,
            report TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE INDEX grow_rounds_by_time ON grow_rounds (created_at);
        """,
    )


@migration
def m011_jobs_and_feedback_reviews(conn: sqlite3.Connection) -> None:
    """Long work started from the web pages (teach, train, eval, grow), run one at a time by a
    worker process.

    ``state``: 'queued', 'running', 'finished', 'failed' or 'interrupted' (stopped on request, or
    found running with its worker gone after a restart). ``params`` are the settings the job was
    started with (JSON), ``progress`` the latest progress the worker reported (JSON: done, total,
    message, run), ``result`` what it made (JSON). The log is a file: ``jobs/<id>.log``.

    ``feedback_reviews``: what a person decided about a pending feedback in the feedback queue
    before grow ('accepted' or 'rejected'; a rejected one is also marked dismissed).
    """
    run_script(
        conn,
        """
        CREATE TABLE jobs (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL CHECK (kind IN ('teach', 'train', 'eval', 'grow')),
            title TEXT NOT NULL DEFAULT '',
            params TEXT NOT NULL DEFAULT '{}',
            state TEXT NOT NULL DEFAULT 'queued'
                CHECK (state IN ('queued', 'running', 'finished', 'failed', 'interrupted')),
            progress TEXT NOT NULL DEFAULT '{}',
            result TEXT NOT NULL DEFAULT '{}',
            error TEXT,
            stop_requested INTEGER NOT NULL DEFAULT 0,
            worker_pid INTEGER,
            created_at REAL NOT NULL,
            started_at REAL,
            finished_at REAL
        );
        CREATE INDEX jobs_by_state ON jobs (state, id);
        CREATE TABLE feedback_reviews (
            feedback_id INTEGER PRIMARY KEY REFERENCES chat_feedback(id) ON DELETE CASCADE,
            decision TEXT NOT NULL CHECK (decision IN ('accepted', 'rejected')),
            at REAL NOT NULL
        );
        """,
    )


@migration
def m012_knowledge_statements(conn: sqlite3.Connection) -> None:
    """The statements of each note chunk (sentences, list items, table rows), each with a vector
    of its own in ``knowledge_embeddings`` under ``content_hash``: a prompt shows the statements
    of a retrieved section closest to the question (see ``bonsai.rag.focus``).

    Statements are written and removed together with their chunks, whose triggers already move
    ``knowledge_state.generation``. Gardens from before have none until their notes are added
    again (the chunking fingerprint changed, so ``bonsai notes add`` re-cuts them); until then
    their sections are shown whole, as before.
    """
    run_script(
        conn,
        """
        CREATE TABLE knowledge_statements (
            id INTEGER PRIMARY KEY,
            chunk_id INTEGER NOT NULL REFERENCES knowledge_chunks(id) ON DELETE CASCADE,
            ordinal INTEGER NOT NULL,
            text TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            UNIQUE (chunk_id, ordinal)
        );
        CREATE INDEX knowledge_statements_by_hash ON knowledge_statements (content_hash);
        """,
    )
