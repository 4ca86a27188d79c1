"""Telling a file's format from ``--format``, its extension and its content.

A format has two parts: the *container* (how to read the file: json, csv, xlsx, parquet, hf) and
the *schema* (how its rows become records: flat Alpaca-like rows, Dolly, ShareGPT/messages or
self-instruct seed tasks). The schema is taken from the keys of the rows unless ``--format`` names
one; ``alpaca`` and ``jsonl`` name only the container, so Dolly keys are still recognised.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from bonsai.curate.formats import IMPORT_FORMATS
from bonsai.curate.formats.arrow import is_hf_folder
from bonsai.errors import BonsaiError

SCHEMAS = ("flat", "dolly", "sharegpt", "self-instruct")

_FORCED: dict[str, tuple[str, str | None]] = {
    "alpaca": ("json", None),
    "jsonl": ("json", None),
    "dolly": ("json", "dolly"),
    "sharegpt": ("json", "sharegpt"),
    "self-instruct": ("json", "self-instruct"),
    "csv": ("csv", None),
    "xlsx": ("xlsx", None),
    "parquet": ("parquet", None),
    "hf": ("hf", None),
}

_SUFFIXES = {
    ".json": "json",
    ".jsonl": "json",
    ".ndjson": "json",
    ".csv": "csv",
    ".tsv": "csv",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".xls": "xlsx",  # the reader explains that .xls must be re-saved as .xlsx
    ".parquet": "parquet",
    ".pq": "parquet",
}


def resolve_format(path: Path, fmt: str | None) -> tuple[str, str | None]:
    """(container, schema or None for 'from the keys') for ``path``."""
    if fmt is not None:
        key = fmt.strip().lower().replace("_", "-")
        key = {"selfinstruct": "self-instruct", "excel": "xlsx", "json": "alpaca"}.get(key, key)
        if key not in _FORCED:
            raise BonsaiError(
                f"unknown format '{fmt}'", hint=f"choose one of: {', '.join(IMPORT_FORMATS)}"
            )
        return _FORCED[key]
    if not path.exists():
        raise BonsaiError("no such file or folder", file=path)
    if path.is_dir():
        if is_hf_folder(path):
            return "hf", None
        raise BonsaiError(
            "a folder, but not a Hugging Face dataset folder (no dataset_dict.json or state.json)",
            file=path,
            hint="name a file, or a folder saved with Dataset.save_to_disk",
        )
    container = _SUFFIXES.get(path.suffix.lower())
    if container is not None:
        return container, None
    return _sniff(path), None


def _sniff(path: Path) -> str:
    with path.open("rb") as f:
        head = f.read(4096)
    if head.startswith(b"PK\x03\x04"):
        return "xlsx"
    if head.startswith(b"PAR1"):
        return "parquet"
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped[:1] in (b"[", b"{"):
        return "json"
    raise BonsaiError(
        "cannot tell the format of this file from its name or content",
        file=path,
        hint=f"pass --format, one of: {', '.join(IMPORT_FORMATS)}",
    )


def detect_schema(keys: Iterable[str]) -> str:
    """The schema a set of column names suggests."""
    names = set(keys)
    if "conversations" in names or "messages" in names:
        return "sharegpt"
    if "instances" in names:
        return "self-instruct"
    if ("response" in names or "context" in names) and "output" not in names:
        return "dolly"
    return "flat"


def format_name(container: str, schema: str, *, json_array: bool) -> str:
    """The name an import report shows, e.g. 'dolly', 'jsonl', 'alpaca', 'parquet (sharegpt)'."""
    if container == "json":
        if schema == "flat":
            return "alpaca" if json_array else "jsonl"
        return schema
    return container if schema == "flat" else f"{container} ({schema})"
