"""Grow rounds in the database: the migration on an older garden, and a round's stages."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bonsai.db import connect
from bonsai.db.migrations import applied_migrations, migrate
from bonsai.grow.rounds import GrowRound, advance, list_rounds, save_round, unfinished_round


def test_grow_rounds_migration_upgrades_a_garden_made_before_it(tmp_path: Path) -> None:
    conn = connect(tmp_path / "old.db", migrate_schema=False)
    migrate(conn, upto="m009_training_runs")
    assert "m010_grow_rounds" not in applied_migrations(conn)
    migrate(conn)
    assert "m010_grow_rounds" in applied_migrations(conn)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(grow_rounds)")}
    assert {"id", "dataset", "stage", "current_run", "new_run", "records", "decision"} <= columns


def test_a_round_is_stored_advanced_and_found_while_unfinished(garden) -> None:
    conn: sqlite3.Connection = garden.db
    round_ = GrowRound(
        id="grow-1", dataset="cats", stage="ingested", current_run="base", records=["fb1-x"]
    )
    save_round(conn, round_)
    assert unfinished_round(conn).id == "grow-1"
    advance(conn, round_, "trained", new_run="run-2")
    advance(conn, round_, "evaluated", decision={"decision": {"promote": True}}, report="r.html")
    stored = list_rounds(conn)[0]
    assert (stored.stage, stored.new_run, stored.report) == ("evaluated", "run-2", "r.html")
    assert stored.decision == {"decision": {"promote": True}}
    assert stored.records == ["fb1-x"] and stored.reached("trained")
    assert not stored.reached("done")
    advance(conn, round_, "done", promoted=True)
    assert unfinished_round(conn) is None
    assert list_rounds(conn)[0].promoted is True
