"""The environment variables BONSAI reads, each declared once with what it does.

Settings belong in ``bonsai.toml`` and on the command line; these are for what depends on the
machine rather than the garden (threads, where caches go, how long to wait for a lock) and for
tests. The module that uses a variable reads it with :meth:`EnvVar.get` and decides what its
value means; ``docs/`` and ``--help`` point here.

API keys are not listed: their variable's *name* is a setting (``api_key_env``), so any name
works (``OPENAI_API_KEY`` is the teacher's fallback).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import overload


@dataclass(frozen=True)
class EnvVar:
    """One environment variable: its name and what it does."""

    name: str
    doc: str

    @overload
    def get(self) -> str | None: ...
    @overload
    def get(self, default: str) -> str: ...
    def get(self, default: str | None = None) -> str | None:
        """The variable's value as set (``default`` when it is unset)."""
        return os.environ.get(self.name, default)


GARDEN = EnvVar("BONSAI_GARDEN", "Garden folder for every command (as --garden).")
THREADS = EnvVar(
    "BONSAI_THREADS",
    "Torch threads for generation (chat, serve, eval); default: the cores less one.",
)
LLAMA_THREADS = EnvVar(
    "BONSAI_LLAMA_THREADS", "Threads of the llama.cpp engine (--engine llama); default: all cores."
)
EMBED_MODEL = EnvVar(
    "BONSAI_EMBED_MODEL",
    "Embedding model for notes retrieval (e.g. hashing-256 in tests); default: the first "
    "installed of the preferred models.",
)
EMBED_THREADS = EnvVar(
    "BONSAI_EMBED_THREADS", "OpenMP threads of the multilingual embedding model; default: 1."
)
CACHE_DIR = EnvVar(
    "BONSAI_CACHE_DIR",
    "Where converted models are kept (a 'models' folder inside it); default: the platform's "
    "user cache folder.",
)
DB_TIMEOUT = EnvVar(
    "BONSAI_DB_TIMEOUT",
    "Seconds a command waits for another one's write lock on the garden database; default: 120.",
)
SHARED_DATA = EnvVar(
    "BONSAI_SHARED_DATA",
    "Folder of shared data sets (Alpaca seed tasks, translation pairs) that evaluation and the "
    "notes centering use when present; default: ../shared/data beside the project.",
)

VARIABLES: tuple[EnvVar, ...] = (
    GARDEN,
    THREADS,
    LLAMA_THREADS,
    EMBED_MODEL,
    EMBED_THREADS,
    CACHE_DIR,
    DB_TIMEOUT,
    SHARED_DATA,
)
"""Every variable BONSAI reads."""
