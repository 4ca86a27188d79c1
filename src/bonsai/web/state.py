"""What the pages share: the garden, the access token, the CSRF secret, limits."""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bonsai.errors import BonsaiError
from bonsai.garden import Garden
from bonsai.serve.args import MAX_UPLOAD_MB, MB

MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * MB
"""Largest file an import by upload accepts (a 16k-record Excel workbook is about 5 MB)."""


@dataclass
class WebState:
    root: Path
    """The garden folder."""
    token: str | None = None
    """Access token, required when the server listens beyond this machine (None: loopback)."""
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    """Sent back by every page request that changes something (a header a foreign site cannot
    set)."""
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    supervisor: Any = None
    """The :class:`~bonsai.web.supervisor.JobSupervisor` (None: jobs wait for a worker)."""
    check_cache: dict[tuple[Any, ...], Any] = field(default_factory=dict)
    """Keyed by the dataset's latest change id, so an edit makes them stale: (dataset, id) → the
    findings of ``data check``; ('facets', dataset, id) → the values of the filter menus."""
    _local: threading.local = field(default_factory=threading.local)

    def garden(self) -> Garden:
        """This thread's garden object (SQLite connections are not shared between threads)."""
        garden = getattr(self._local, "garden", None)
        if garden is None:
            garden = Garden.open(self.root)
            self._local.garden = garden
        return garden

    def inside(self, path: str | Path) -> Path:
        """``path`` resolved, if it lies inside the garden; an error otherwise (downloads and
        file views never leave the garden)."""
        candidate = Path(path)
        if not candidate.is_absolute():
            candidate = self.root / candidate
        resolved = candidate.resolve()
        if not resolved.is_relative_to(self.root.resolve()):
            raise BonsaiError("that file is outside the garden", file=str(path))
        return resolved
