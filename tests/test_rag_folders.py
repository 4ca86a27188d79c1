"""Adding a folder of notes: links out of it, files that vanish, files that cannot be read."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bonsai.garden import Garden
from bonsai.rag import retrieve
from bonsai.rag.embed import HashingEncoder
from bonsai.rag.notes import add_paths, list_documents


@pytest.fixture
def encoder() -> HashingEncoder:
    return HashingEncoder(dim=64)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "cat.md").write_text("# Cat\n\nScoop the litter box every morning.\n")
    (notes / "food.md").write_text("# Food\n\nWet food twice a day.\n")
    return notes


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    secret = tmp_path / "elsewhere" / "secret.md"
    secret.parent.mkdir()
    secret.write_text("# Secret\n\nThe password is swordfish.\n")
    return secret


def _sources(garden: Garden, encoder: HashingEncoder) -> list[str]:
    return sorted(Path(d.source).name for d in list_documents(garden, model=encoder.name))


def test_links_out_of_the_folder_are_skipped_and_named(
    garden: Garden, folder: Path, outside: Path, encoder: HashingEncoder
) -> None:
    (folder / "secret.md").symlink_to(outside)
    (folder / "linked-dir").symlink_to(outside.parent, target_is_directory=True)
    (folder / "dangling.md").symlink_to(folder / "gone.md")
    (folder / "same.md").symlink_to(folder / "cat.md")  # inside the folder: fine, added once
    report = add_paths(garden, [folder], encoder=encoder)
    assert sorted(Path(s).name for s in report.links) == ["dangling.md", "linked-dir", "secret.md"]
    assert _sources(garden, encoder) == ["cat.md", "food.md"]
    assert retrieve(garden, "swordfish password", k=5, mode="bm25") == []


def test_a_file_named_on_its_own_may_be_a_link(
    garden: Garden, folder: Path, outside: Path, encoder: HashingEncoder
) -> None:
    link = folder.parent / "direct.md"
    link.symlink_to(outside)
    report = add_paths(garden, [link], encoder=encoder)
    assert report.added and not report.links


def test_re_adding_drops_what_vanished_links_included(
    garden: Garden, folder: Path, outside: Path, encoder: HashingEncoder
) -> None:
    (folder / "sub").mkdir()
    (folder / "sub" / "deep.md").write_text("# Deep\n\nA note in a subfolder.\n")
    add_paths(garden, [folder], encoder=encoder)
    assert _sources(garden, encoder) == ["cat.md", "deep.md", "food.md"]
    # A note replaced by a link out of the folder, a renamed one and a deleted subfolder.
    (folder / "cat.md").unlink()
    (folder / "cat.md").symlink_to(outside)
    (folder / "food.md").rename(folder / "food.md.bak")
    (folder / "sub" / "deep.md").unlink()
    (folder / "sub").rmdir()
    (folder / "new.md").write_text("# New\n\nSomething new.\n")
    report = add_paths(garden, [folder], encoder=encoder)
    assert sorted(Path(s).name for s in report.removed) == ["cat.md", "deep.md", "food.md"]
    assert _sources(garden, encoder) == ["new.md"]
    assert retrieve(garden, "litter", k=5, mode="bm25") == []


def test_an_unreadable_file_is_reported_and_the_rest_added(
    garden: Garden, folder: Path, encoder: HashingEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    (folder / "latin1.md").write_bytes("# Café\n\nUn café crème.\n".encode("latin-1"))
    (folder / "photo.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    locked = folder / "locked.md"
    locked.write_text("# Locked\n\nNo one may read this.\n")
    locked.chmod(0)
    if os.geteuid() == 0:  # root reads anything: make the file refuse as it would for a user
        real = Path.read_bytes

        def read_bytes(self: Path) -> bytes:
            if self.name == "locked.md":
                raise PermissionError(13, "Permission denied", str(self))
            return real(self)

        monkeypatch.setattr(Path, "read_bytes", read_bytes)
    try:
        report = add_paths(garden, [folder], encoder=encoder)
    finally:
        locked.chmod(0o644)
    why = {Path(source).name: reason for source, reason in report.unreadable}
    assert sorted(why) == ["latin1.md", "locked.md", "photo.md"]
    assert "UTF-8" in why["latin1.md"] and why["latin1.md"].startswith("line 1")
    assert "Permission denied" in why["locked.md"]
    assert "binary" in why["photo.md"]
    assert _sources(garden, encoder) == ["cat.md", "food.md"]


def test_a_note_that_becomes_unreadable_keeps_what_was_stored(
    garden: Garden, folder: Path, encoder: HashingEncoder
) -> None:
    add_paths(garden, [folder], encoder=encoder)
    (folder / "cat.md").write_bytes(b"# Cat\n\n\xff broken now\n")
    report = add_paths(garden, [folder], encoder=encoder)
    assert [Path(s).name for s, _ in report.unreadable] == ["cat.md"]
    assert report.removed == []
    assert _sources(garden, encoder) == ["cat.md", "food.md"]
