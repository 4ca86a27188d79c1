"""The sample garden that ships with BONSAI: a personal cat-care dataset about Mochi, plus notes.

`bonsai demo` and the tests use it; README.md in this folder describes the facts it keeps to.
"""

from __future__ import annotations

from pathlib import Path

RECORDS_FILE = "cat-care.jsonl"
NOTES_FOLDER = "notes"

PLANTED_CONTRADICTION_IDS: tuple[str, str] = ("cat-0141", "cat-0219")
"""Same question ("How much does Mochi weigh?"), different answers: 3.6 kg (a stale record from
adoption time) against 4.2 kg (the April 2025 check-up). Planted for `bonsai data check`."""

PLANTED_NEAR_DUPLICATE_IDS: tuple[tuple[str, str], ...] = (
    ("cat-0167", "cat-0181"),  # why lilies are dangerous (open_qa, en)
    ("cat-0072", "cat-0123"),  # why onions are bad for cats (open_qa, ja)
    ("cat-0197", "cat-0213"),  # ideas to help Mochi drink more water (brainstorming, en)
)
"""Pairs that say the same thing in slightly different words. Planted for `bonsai data check`."""


def sample_dir() -> Path:
    """The folder holding the sample data (inside the installed package)."""
    # The package is always installed as plain files (setuptools package-data), never zipped,
    # so the module's own folder is the data folder; importlib.resources would add nothing here.
    return Path(__file__).resolve().parent


def records_path() -> Path:
    """The sample records, one JSON object per line."""
    return sample_dir() / RECORDS_FILE


def notes_dir() -> Path:
    """The sample notes (markdown) that retrieval indexes."""
    return sample_dir() / NOTES_FOLDER
