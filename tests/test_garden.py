import sqlite3
from pathlib import Path

import pytest

from bonsai.db import MIGRATIONS, applied_migrations, connect, migrate
from bonsai.errors import BonsaiError, GardenNotFound
from bonsai.garden import Garden
from bonsai.records import Record
from bonsai.store import Change, RecordStore


def test_init_creates_config_db_and_folders(tmp_path: Path, cli) -> None:
    result = cli("init", tmp_path / "g")
    assert result.exit_code == 0, result.output
    root = tmp_path / "g"
    assert (root / "bonsai.toml").is_file()
    assert (root / "garden.db").is_file()
    for folder in ("runs", "notes", "exports"):
        assert (root / folder).is_dir()
    applied = applied_migrations(sqlite3.connect(root / "garden.db"))
    assert applied == [name for name, _ in MIGRATIONS]


def test_init_refuses_existing_garden(tmp_path: Path, cli) -> None:
    assert cli("init", tmp_path).exit_code == 0
    result = cli("init", tmp_path)
    assert result.exit_code == 2
    assert "already exists" in result.stderr
    assert "Traceback" not in result.output


def test_find_walks_upwards(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Garden.init(tmp_path)
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert Garden.find().root == tmp_path.resolve()


def test_no_garden_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(GardenNotFound) as info:
        Garden.find(tmp_path)
    assert "bonsai init" in str(info.value)


def test_migrations_upgrade_an_older_schema(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    conn = connect(db, migrate_schema=False)
    migrate(conn, upto="m001_datasets_and_records")
    assert applied_migrations(conn) == ["m001_datasets_and_records"]
    conn.execute("INSERT INTO datasets (name, created_at) VALUES ('old', 0)")
    conn.execute(
        "INSERT INTO records (dataset_id, id, position, instruction, created_at, updated_at)"
        " VALUES (1, 'r1', 0, 'Hello', 0, 0)"
    )
    conn.close()

    conn = connect(db)  # applies the rest
    assert applied_migrations(conn) == [name for name, _ in MIGRATIONS]
    (record,) = RecordStore(conn).records("old")
    assert record.instruction == "Hello" and record.split is None and record.extra == {}


def test_failed_migration_leaves_schema_untouched(tmp_path: Path, monkeypatch) -> None:
    from bonsai.db import migrations

    def m999_broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("boom")

    monkeypatch.setattr(migrations, "MIGRATIONS", [*migrations.MIGRATIONS, ("m999", m999_broken)])
    conn = connect(tmp_path / "x.db", migrate_schema=False)
    with pytest.raises(RuntimeError):
        migrate(conn)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "half_done" not in tables
    assert "m999" not in applied_migrations(conn)


def test_history_and_undo(garden: Garden) -> None:
    store = RecordStore(garden.db)
    a = Record(id="a", instruction="Q1", output="A1")
    b = Record(id="b", instruction="Q2", output="A2")
    first = store.apply("cats", [Change(None, a), Change(None, b)], kind="import", description="i")
    edited = Record(id="a", instruction="Q1", output="A1 edited")
    second = store.apply("cats", [Change(a, edited)], kind="import", description="edit")
    assert [r.output for r in store.records("cats")] == ["A1 edited", "A2"]
    assert store.apply("cats", [Change(edited, edited)], kind="x", description="noop") is None

    with pytest.raises(BonsaiError, match="changed again"):
        store.undo("cats", first)
    store.undo("cats")  # undoes the edit
    assert [r.output for r in store.records("cats")] == ["A1", "A2"]
    store.undo("cats")  # undoes the import
    assert store.records("cats") == []
    kinds = [(c.id, c.kind, c.undone_by is not None) for c in store.history("cats")]
    assert kinds[0][2] and kinds[1][2]
    assert second in [c.id for c in store.history("cats")]
    with pytest.raises(BonsaiError, match="nothing to undo"):
        store.undo("cats")
