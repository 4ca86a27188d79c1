"""Readers and writers for the files BONSAI imports and exports.

Reading happens in three steps, each in its own module:

1. a *container* reader (:mod:`.jsonfmt`, :mod:`.tabular`, :mod:`.excel`, :mod:`.arrow`) turns the
   file into a :class:`SourceTable` of plain dicts, each with the line or row it came from;
2. a *schema* (:mod:`.schemas`) reshapes Dolly, ShareGPT and self-instruct rows into flat rows
   with BONSAI's field names;
3. :mod:`.build` checks every value and makes :class:`~bonsai.records.Record` objects.

Writing goes the other way: :mod:`.schemas` builds rows per format and a container writer stores
them atomically.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypedDict

IMPORT_FORMATS: tuple[str, ...] = (
    "alpaca",
    "jsonl",
    "dolly",
    "sharegpt",
    "self-instruct",
    "csv",
    "xlsx",
    "parquet",
    "hf",
)
"""What `bonsai data import --format` accepts."""

EXPORT_FORMATS: tuple[str, ...] = (
    "alpaca",
    "jsonl",
    "dolly",
    "sharegpt",
    "csv",
    "xlsx",
    "parquet",
)
"""What `bonsai data export --format` accepts."""

EXPORT_SUFFIXES: dict[str, str] = {
    "alpaca": ".json",
    "jsonl": ".jsonl",
    "dolly": ".jsonl",
    "sharegpt": ".json",
    "csv": ".csv",
    "xlsx": ".xlsx",
    "parquet": ".parquet",
}

DEFAULT_MAX_FIELD_CHARS = 1_000_000
"""Longest value (in characters) an import accepts in one field; longer ones are refused."""

JSON_SCHEMA_FORMATS = frozenset({"alpaca", "jsonl", "dolly", "sharegpt", "self-instruct"})
"""Formats stored as JSON (an array, or one object per line)."""


class Where(TypedDict):
    """Where a row came from, as :class:`~bonsai.errors.BonsaiError` takes it."""

    line: int | None
    row: int | None


@dataclass
class SourceRow:
    """One object or row of a source file, with where it came from (for error messages)."""

    values: dict[str, Any]
    line: int | None = None
    """JSON sources: the line the object starts on."""
    row: int | None = None
    """Tables: the row as a spreadsheet shows it (header = row 1); Parquet/HF: the 1-based index."""

    def where(self) -> Where:
        """Keyword arguments for :class:`~bonsai.errors.BonsaiError`."""
        return {"line": self.line, "row": self.row}

    def describe(self) -> str:
        return f"line {self.line}" if self.line is not None else f"row {self.row}"


@dataclass
class SourceTable:
    """What a container reader found in a file."""

    rows: list[SourceRow]
    columns: list[str] | None = None
    """Header of a table (CSV, Excel, Parquet, HF); None for JSON, whose keys vary per object."""
    json_array: bool = False
    """JSON sources: an array (Alpaca style) rather than one object per line."""
    notes: list[str] = field(default_factory=list)
    """Things the user should know about how the file was read (shown in the import report)."""
    json_columns: frozenset[str] = frozenset()
    """Columns whose cells hold JSON text written by a BONSAI export (decoded on import)."""

    @property
    def tabular(self) -> bool:
        """Every row has every column, and an empty cell means 'blank' rather than 'absent'."""
        return self.columns is not None
