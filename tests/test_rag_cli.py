"""``bonsai notes``: add, search, list, remove, embed, and the errors a person can act on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bonsai.garden import Garden
from bonsai.records import Record
from bonsai.store import Change, RecordStore


@pytest.fixture(autouse=True)
def _hashing_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    # The documented seam: the default tier runs on the instant, deterministic encoder.
    monkeypatch.setenv("BONSAI_EMBED_MODEL", "hashing")


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    folder = tmp_path / "notes"
    (folder / "health").mkdir(parents=True)
    (folder / "care.md").write_text(
        "# Care\n\n## Brushing\n\nBrush Mochi's coat twice a week in spring.\n", encoding="utf-8"
    )
    (folder / "health" / "病院.txt").write_text(
        "もちは毎年四月に健康診断を受ける。\n\n予防接種は秋。\n", encoding="utf-8"
    )
    (folder / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0")
    return folder


def test_add_search_list_remove(cli, garden: Garden, notes: Path) -> None:
    result = cli("notes", "add", notes, "--garden", garden.root)
    assert result.exit_code == 0, result.output
    assert "added" in result.stdout and "care.md" in result.stdout and "病院.txt" in result.stdout
    assert "skipped 1 other file(s)" in result.stdout
    written = (
        "2 chunk(s) written, 2 text(s) embedded (chunks and their statements) with hashing-256"
    )
    assert written in result.stdout

    again = cli("notes", "add", notes, "--garden", garden.root)
    assert "unchanged" in again.stdout and "0 chunk(s) written, 0 text(s) embedded" in again.stdout

    found = cli("notes", "search", "健康診断", "--garden", garden.root, "--json", "-k", "2")
    assert found.exit_code == 0, found.output
    hits = json.loads(found.stdout)
    assert len(hits) == 2
    assert hits[0]["source"].endswith("health/病院.txt")
    assert hits[0]["text"] == "もちは毎年四月に健康診断を受ける。\n\n予防接種は秋。"
    assert hits[0]["bm25_rank"] == 1 and hits[0]["citation"] == hits[0]["source"]

    shown = cli("notes", "search", "brushing coat", "--garden", garden.root)
    assert "care.md > Care > Brushing" in shown.stdout and "twice a week" in shown.stdout

    listed = cli("notes", "list", "--garden", garden.root, "--json")
    docs = json.loads(listed.stdout)
    assert [(Path(d["source"]).name, d["chunks"], d["embedded"]) for d in docs] == [
        ("care.md", 1, 1),
        ("病院.txt", 1, 1),
    ]
    table = cli("notes", "list", "--garden", garden.root)
    assert "Care" in table.stdout and "病院" in table.stdout

    removed = cli("notes", "remove", notes / "care.md", "--garden", garden.root)
    assert removed.exit_code == 0 and "removed" in removed.stdout
    assert (
        json.loads(
            cli(
                "notes", "search", "brushing", "--garden", garden.root, "--json", "--mode", "bm25"
            ).stdout
        )
        == []
    )


def test_add_dataset_records(cli, garden: Garden) -> None:
    records = [Record(id="q1", instruction="What does Mochi eat?", output="Wet food, twice a day.")]
    RecordStore(garden.db).apply(
        "cats", [Change(None, r) for r in records], kind="import", description="t"
    )
    result = cli("notes", "add", "--dataset", "cats", "--garden", garden.root)
    assert result.exit_code == 0, result.output
    assert "dataset:cats" in result.stdout
    hits = json.loads(cli("notes", "search", "wet food", "--json", "--garden", garden.root).stdout)
    assert hits[0]["source"] == "dataset:cats#q1"
    assert cli("notes", "remove", "dataset:cats", "--garden", garden.root).exit_code == 0
    assert "empty" in cli("notes", "list", "--garden", garden.root).stdout


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.md", "no such file or folder"),
        (lambda d: _write(d / "scan.pdf", b"%PDF-1.4\x00\x00binary"), "binary file, not text"),
        (
            lambda d: _write(d / "sjis.md", "猫".encode("shift_jis")),
            "line 1, column 1: not valid UTF-8",
        ),
        (lambda d: _mkdir(d / "empty"), "no markdown or text files in this folder"),
    ],
)
def test_bad_input_is_one_clear_line(cli, garden: Garden, tmp_path: Path, make, message) -> None:
    path = make(tmp_path)
    result = cli("notes", "add", path, "--garden", garden.root)
    assert result.exit_code == 2
    assert str(path) in result.stderr and message in result.stderr
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_usage_errors(cli, garden: Garden) -> None:
    nothing = cli("notes", "add", "--garden", garden.root)
    assert nothing.exit_code == 2 and "nothing to add" in nothing.stderr
    unknown = cli("notes", "add", "--dataset", "nope", "--garden", garden.root)
    assert unknown.exit_code == 2 and "no dataset named 'nope'" in unknown.stderr
    gone = cli("notes", "remove", "never-added.md", "--garden", garden.root)
    assert gone.exit_code == 2 and "not in the knowledge base" in gone.stderr
    mode = cli("notes", "search", "x", "--mode", "fuzzy", "--garden", garden.root)
    assert mode.exit_code == 2 and "unknown mode 'fuzzy'" in mode.stderr
    empty = cli("notes", "search", "anything", "--garden", garden.root)
    assert empty.exit_code == 0 and "No matching notes." in empty.stdout


def test_embed_after_switching_models(cli, garden: Garden, notes: Path, monkeypatch) -> None:
    cli("notes", "add", notes, "--garden", garden.root)
    monkeypatch.setenv("BONSAI_EMBED_MODEL", "hashing-256")  # the same model as "hashing"
    assert "no vector" not in cli("notes", "list", "--garden", garden.root).stderr
    monkeypatch.setenv("BONSAI_EMBED_MODEL", "hashing-64")
    listed = cli("notes", "list", "--garden", garden.root)
    assert "2 chunk(s) have no vector for hashing-64" in listed.stderr
    dense = cli("notes", "search", "brushing", "--mode", "dense", "--json", "-g", garden.root)
    assert json.loads(dense.stdout) == []  # no vectors of this model yet
    result = cli("notes", "embed", "--garden", garden.root)
    embedded = "2 text(s) embedded (chunks and their statements) with hashing-64"
    assert result.exit_code == 0 and embedded in result.stdout
    dense = cli("notes", "search", "brushing", "--mode", "dense", "--json", "-g", garden.root)
    assert len(json.loads(dense.stdout)) == 2
    assert "no vector" not in cli("notes", "list", "--garden", garden.root).stderr


def test_help_reads_well(cli) -> None:
    result = cli("notes", "--help")
    assert result.exit_code == 0
    for command in ("add", "search", "list", "remove", "embed"):
        assert command in result.stdout


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


def test_add_names_skipped_links_and_unreadable_files(
    cli, garden: Garden, notes: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.md"
    outside.write_text("# Outside\n\nNot part of the notes.\n", encoding="utf-8")
    (notes / "linked.md").symlink_to(outside)
    (notes / "latin1.md").write_bytes("# Café\n\ncrème\n".encode("latin-1"))
    result = cli("notes", "add", notes, "--garden", garden.root)
    assert result.exit_code == 0, result.output
    assert "latin1.md: skipped, cannot be read: line 1: not valid UTF-8" in result.stderr
    assert "linked.md: skipped, a link that leads outside the folder" in result.stderr
    assert "2 chunk(s) written" in result.stdout
    (notes / "linked.md").unlink()
    (notes / "care.md").unlink()
    again = cli("notes", "add", notes, "--garden", garden.root)
    assert "removed" in again.stdout and "care.md" in again.stdout
    assert "linked.md" not in again.stderr


def test_list_names_notes_added_before_their_lines_were_kept(
    cli, garden: Garden, tmp_path: Path
) -> None:
    note = tmp_path / "bake.md"
    note.write_text(
        "# Bake\n\n## Oven\n\nThe oven runs 10 degrees hot. The pot preheats for 45 minutes.\n",
        encoding="utf-8",
    )
    assert cli("notes", "add", note, "--garden", garden.root).exit_code == 0
    listed = cli("notes", "list", "--garden", garden.root)
    assert listed.exit_code == 0 and "added before" not in listed.stderr
    # As a garden from before keeps it: the section without its statements.
    with garden.db:
        garden.db.execute("DELETE FROM knowledge_statements")
        garden.db.execute("UPDATE knowledge_documents SET content_hash = 'chunk-v1'")
    listed = cli("notes", "list", "--garden", garden.root)
    assert "1 note(s) were added before their lines were kept" in " ".join(listed.stderr.split())
    again = cli("notes", "add", note, "--garden", garden.root)
    assert again.exit_code == 0 and "updated" in again.stdout
    assert "added before" not in cli("notes", "list", "--garden", garden.root).stderr
