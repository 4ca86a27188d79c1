"""A garden: a folder with ``bonsai.toml``, one SQLite database and folders for run artefacts."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from bonsai.config import GardenConfig
from bonsai.db import connect
from bonsai.errors import BonsaiError, GardenNotFound

CONFIG_NAME = "bonsai.toml"
DB_NAME = "garden.db"
GARDEN_FILES = frozenset(
    {CONFIG_NAME, DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm", f"{DB_NAME}-journal"}
)
"""A garden's own files, which no output a user names may replace."""
PROTECTED_FOLDERS = frozenset({"runs"})
"""Folders of a garden whose contents only BONSAI writes (a run's adapter, manifest, metrics)."""


def check_output_path(
    path: str | Path, *, folder: bool = False, garden: Path | None = None
) -> Path:
    """``path``, resolved, if a command may write it; an error if that would harm a garden.

    Refused: a garden's ``bonsai.toml`` and ``garden.db`` (with its ``-wal``, ``-shm`` and
    ``-journal`` files), anything inside its ``runs/``, a garden folder itself, and an existing
    folder where a file is written. With ``folder`` (an output folder that may replace an old
    one) also any folder that holds the ``garden`` folder. Links are followed, so a link to
    ``garden.db`` is refused too. Every garden above the path is checked, not only the current.
    """
    target = Path(path).expanduser().resolve()
    if folder and garden is not None and target in (garden.resolve(), *garden.resolve().parents):
        raise BonsaiError("this folder holds the garden; name a new folder to write", file=path)
    for root in (target, *target.parents):
        if not (root / CONFIG_NAME).is_file():
            continue
        if root == target:
            raise BonsaiError("this is a garden folder; name a file to write", file=path)
        parts = target.relative_to(root).parts
        # Compared without case: on macOS and Windows "Garden.DB" is the same file.
        if len(parts) == 1 and parts[0].lower() in GARDEN_FILES:
            raise BonsaiError(
                f"this is the garden's own {parts[0]}; writing it would replace the garden",
                file=path,
                hint="choose another file, e.g. in the garden's exports/ folder",
            )
        if parts[0].lower() in PROTECTED_FOLDERS:
            raise BonsaiError(
                f"this is inside the garden's {parts[0]}/ folder, which only BONSAI writes",
                file=path,
                hint="choose another file, e.g. in the garden's exports/ folder",
            )
    if target.is_dir() and not folder:
        raise BonsaiError("this is a folder; name a file to write", file=path)
    return target


@dataclass
class Garden:
    root: Path

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_NAME

    @property
    def db_path(self) -> Path:
        return self.root / DB_NAME

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def notes_dir(self) -> Path:
        return self.root / "notes"

    @property
    def exports_dir(self) -> Path:
        return self.root / "exports"

    @property
    def templates_dir(self) -> Path:
        """User overrides of the teacher's prompt templates (``<category>.j2``)."""
        return self.root / "templates"

    @cached_property
    def config(self) -> GardenConfig:
        return GardenConfig.load(self.config_path)

    @cached_property
    def db(self) -> sqlite3.Connection:
        return connect(self.db_path)

    def choose_dataset(self, given: str | None) -> str:
        """``given``, else ``default_dataset`` from bonsai.toml, else the garden's only dataset."""
        if given is not None:
            return given
        if self.config.default_dataset:
            return self.config.default_dataset
        from bonsai.store import RecordStore

        names = RecordStore(self.db).dataset_names()
        if len(names) == 1:
            return names[0]
        known = ", ".join(names) if names else "none yet"
        raise BonsaiError(
            f"which dataset? pass --dataset NAME (datasets in this garden: {known})",
            field="dataset",
            hint='or set default_dataset = "NAME" in bonsai.toml',
        )

    def close(self) -> None:
        if "db" in self.__dict__:
            self.db.close()
            del self.__dict__["db"]

    @classmethod
    def init(cls, root: str | Path, *, name: str | None = None) -> Garden:
        """Create a garden in ``root`` (made if missing). Refuses to overwrite an existing one.

        ``bonsai.toml`` is written last, so a failed init leaves no half-made garden behind; a
        ``garden.db`` already in the folder is opened (and so checked) before anything is written.
        """
        root = Path(root).expanduser().resolve()
        if root.exists() and not root.is_dir():
            raise BonsaiError("a file is in the way: a garden is a folder", file=root)
        if (root / CONFIG_NAME).exists():
            raise BonsaiError("a garden already exists here", file=root / CONFIG_NAME)
        garden = cls(root)
        try:
            root.mkdir(parents=True, exist_ok=True)
            garden.db  # noqa: B018 - creates the database and applies every migration
            for folder in (garden.runs_dir, garden.notes_dir, garden.exports_dir):
                folder.mkdir(exist_ok=True)
            GardenConfig(name=name or root.name).save(garden.config_path)
        except OSError as exc:
            garden.close()
            where = exc.filename or root
            raise BonsaiError(
                f"cannot create the garden: {exc.strerror or exc}", file=where
            ) from None
        return garden

    @classmethod
    def find(cls, start: str | Path | None = None) -> Garden:
        """The garden at ``start`` or the nearest folder above it that holds ``bonsai.toml``."""
        here = Path(start or Path.cwd()).resolve()
        for folder in (here, *here.parents):
            if (folder / CONFIG_NAME).is_file():
                return cls(folder)
        raise GardenNotFound(
            "no BONSAI garden here or in any folder above",
            file=here,
            hint="run `bonsai init` to create one, or pass --garden PATH",
        )

    @classmethod
    def open(cls, path: str | Path | None = None) -> Garden:
        """Open the garden named by ``--garden`` (exact folder) or found from the current folder."""
        if path is None:
            return cls.find()
        root = Path(path).resolve()
        if not (root / CONFIG_NAME).is_file():
            raise GardenNotFound(
                "not a BONSAI garden (no bonsai.toml)", file=root, hint="run `bonsai init PATH`"
            )
        return cls(root)
