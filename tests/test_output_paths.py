"""Outputs a user names never replace the garden's own files (item: export over garden.db)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bonsai.garden import check_output_path


@pytest.fixture
def seeded(garden, cli, tmp_path: Path):
    path = tmp_path / "seed.jsonl"
    path.write_text('{"id": "a", "instruction": "A", "output": "1"}\n', "utf-8")
    assert cli("data", "import", path, "-d", "d", "--garden", garden.root).exit_code == 0
    return garden


@pytest.mark.parametrize(
    "name",
    [
        "garden.db",
        "garden.db-wal",
        "garden.db-shm",
        "bonsai.toml",
        "runs/x.jsonl",
        "runs",
        "Garden.DB",
    ],
)
def test_export_refuses_the_gardens_own_files(seeded, cli, name: str) -> None:
    db_before = seeded.db_path.read_bytes()
    toml_before = seeded.config_path.read_text("utf-8")
    out = seeded.root / name
    result = cli("data", "export", "-d", "d", "-f", "jsonl", "--out", out, "-g", seeded.root)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "error:" in result.stderr
    assert seeded.db_path.read_bytes() == db_before
    assert seeded.config_path.read_text("utf-8") == toml_before
    assert cli("data", "show", "-d", "d", "-g", seeded.root).exit_code == 0


def test_export_refuses_a_link_to_the_database(seeded, cli, tmp_path: Path) -> None:
    link = tmp_path / "innocent.jsonl"
    os.symlink(seeded.db_path, link)
    result = cli("data", "export", "-d", "d", "--out", link, "-g", seeded.root)
    assert result.exit_code == 2 and "garden.db" in result.stderr
    assert seeded.db_path.read_bytes()[:16] == b"SQLite format 3\x00"


def test_export_refuses_another_gardens_database(seeded, cli, tmp_path: Path) -> None:
    other = tmp_path / "other"
    assert cli("init", other).exit_code == 0
    result = cli(
        "data", "export", "-d", "d", "--out", other / "garden.db", "-f", "csv", "-g", seeded.root
    )
    assert result.exit_code == 2 and "garden's own garden.db" in result.stderr


def test_export_to_a_folder_or_under_a_file_is_a_clear_error(seeded, cli, tmp_path: Path) -> None:
    folder = tmp_path / "folder.jsonl"
    folder.mkdir()
    result = cli("data", "export", "-d", "d", "--out", folder, "-g", seeded.root)
    assert result.exit_code == 2 and "is a folder" in result.stderr
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = cli("data", "export", "-d", "d", "--out", blocker / "x.jsonl", "-g", seeded.root)
    assert result.exit_code == 2 and "cannot write" in result.stderr
    assert "Traceback" not in result.output


def test_export_into_exports_still_works(seeded, cli) -> None:
    out = seeded.root / "exports" / "mine.csv"
    assert cli("data", "export", "-d", "d", "--out", out, "-g", seeded.root).exit_code == 0
    assert out.read_text("utf-8-sig").startswith("id,")


def test_stats_picture_refuses_the_database(seeded, cli) -> None:
    result = cli(
        "data", "stats", "-d", "d", "--no-tokens", "--png", seeded.db_path, "-g", seeded.root
    )
    assert result.exit_code == 2 and "garden.db" in result.stderr


def test_folder_outputs_never_hold_the_garden(garden, tmp_path: Path) -> None:
    from bonsai.errors import BonsaiError

    with pytest.raises(BonsaiError, match="holds the garden"):
        check_output_path(garden.root.parent, folder=True, garden=garden.root)
    with pytest.raises(BonsaiError, match="holds the garden"):
        check_output_path(garden.root, folder=True, garden=garden.root)
    assert check_output_path(tmp_path / "merged", folder=True, garden=garden.root)
