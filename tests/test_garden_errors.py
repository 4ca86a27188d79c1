"""The garden itself in a bad way: a file where it should be, a damaged database, a long lock."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from db_support import Locker, bonsai_process, finish

from bonsai.db.connection import BUSY_TIMEOUT_S, connect, transaction
from bonsai.errors import BonsaiError, DatabaseBusy


def test_init_on_a_file_is_a_clear_error(cli, tmp_path: Path) -> None:
    blocker = tmp_path / "notes.txt"
    blocker.write_text("mine", "utf-8")
    for target in (blocker, blocker / "garden"):
        result = cli("init", target)
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output and "error:" in result.stderr
    assert blocker.read_text("utf-8") == "mine"


@pytest.mark.parametrize("damage", ["garbage", "header-only", "half"])
def test_a_damaged_database_is_named_not_a_traceback(garden, cli, tmp_path: Path, damage) -> None:
    source = tmp_path / "seed.jsonl"
    source.write_text(
        "".join(f'{{"instruction": "Q{i} {"x" * 300}", "output": "A{i}"}}\n' for i in range(400)),
        "utf-8",
    )
    assert cli("data", "import", source, "-d", "d", "-g", garden.root).exit_code == 0
    garden.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    garden.close()
    data = garden.db_path.read_bytes()
    cut = {"garbage": b"not a database at all\n", "header-only": data[:50]}
    garden.db_path.write_bytes(cut.get(damage, data[: len(data) // 2]))
    for command in (("data", "list"), ("data", "show", "-d", "d")):
        result = cli(*command, "-g", garden.root)
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        assert "damaged or not a SQLite database" in result.stderr


def test_init_over_a_damaged_database_writes_nothing(cli, tmp_path: Path) -> None:
    root = tmp_path / "g"
    root.mkdir()
    (root / "garden.db").write_bytes(b"SQLite format 3\x00" + b"\x01" * 40)
    result = cli("init", root)
    assert result.exit_code == 2 and "garden.db" in result.stderr
    assert not (root / "bonsai.toml").exists()


def test_the_cli_waits_longer_than_30_seconds_by_default(monkeypatch) -> None:
    from bonsai.db.connection import busy_timeout

    monkeypatch.delenv("BONSAI_DB_TIMEOUT", raising=False)
    assert busy_timeout() == BUSY_TIMEOUT_S > 30


def test_a_long_lock_gives_one_clear_message(garden, tmp_path: Path) -> None:
    source = tmp_path / "a.jsonl"
    source.write_text('{"instruction": "A", "output": "1"}\n', "utf-8")
    garden.close()
    locker = Locker(garden.db_path)
    try:
        started = time.monotonic()
        code, output = finish(
            bonsai_process(
                "data", "import", source, "-d", "d", "-g", garden.root, BONSAI_DB_TIMEOUT="1"
            )
        )
    finally:
        locker.release()
    assert code == 2, output
    assert "Traceback" not in output
    assert "database is busy" in output and "over 1 s" in output
    assert time.monotonic() - started < 60
    assert "d" not in [r[0] for r in connect(garden.db_path).execute("SELECT name FROM datasets")]


def test_a_short_lock_is_waited_for(garden, tmp_path: Path) -> None:
    source = tmp_path / "a.jsonl"
    source.write_text('{"instruction": "A", "output": "1"}\n', "utf-8")
    garden.close()
    locker = Locker(garden.db_path)
    process = bonsai_process("data", "import", source, "-d", "d", "-g", garden.root)
    time.sleep(3)
    locker.release()
    code, output = finish(process)
    assert code == 0, output


def test_busy_is_a_type_a_server_can_catch(garden) -> None:
    other = connect(garden.db_path, timeout=0.1)
    other.execute("BEGIN IMMEDIATE")
    try:
        mine = connect(garden.db_path, timeout=0.2)
        with pytest.raises(DatabaseBusy) as caught, transaction(mine):
            pass
        assert isinstance(caught.value, BonsaiError) and caught.value.waited == pytest.approx(0.2)
    finally:
        other.execute("ROLLBACK")
