"""Errors a person can act on.

Every problem with the user's input is raised as a :class:`BonsaiError` that names the file and,
where known, the line, column, row and field. The CLI prints it as one line and exits non-zero,
without a traceback.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path


@dataclass
class BonsaiError(Exception):
    """A problem the user can fix: bad input, a missing garden, an unknown name."""

    message: str
    file: str | Path | None = None
    line: int | None = None
    column: int | None = None
    row: int | None = None
    field: str | None = None
    hint: str | None = None
    exit_code: int = 2

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        where = []
        if self.file is not None:
            where.append(str(self.file))
        if self.line is not None:
            where.append(f"line {self.line}" + (f", column {self.column}" if self.column else ""))
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.field is not None:
            where.append(f"field '{self.field}'")
        text = ": ".join([", ".join(where), self.message]) if where else self.message
        if self.hint:
            text += f" ({self.hint})"
        return text


class GardenNotFound(BonsaiError):
    """No garden in the current folder or any folder above it."""


class ConflictError(BonsaiError):
    """Another command changed the same records at the same time; nothing was written."""


@dataclass
class DatabaseBusy(BonsaiError, sqlite3.OperationalError):
    """Another process held the garden database's write lock for longer than we waited.

    ``waited`` is how long, in seconds; a server can answer 503 with a Retry-After from it.
    It is also an ``sqlite3.OperationalError``, so code that retries a locked database (the
    server's turn log) treats it as one.
    """

    waited: float = 0.0
