"""CSV files (UTF-8, a byte order mark tolerated), and what every table format shares.

Rows are numbered as a spreadsheet shows them: the header is row 1, the first record row 2.
A CSV file cannot tell an empty string from a missing value: an empty cell is "" for ``input``
and ``output`` and "no value" for the optional fields.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from bonsai.curate.formats import SourceRow, SourceTable
from bonsai.curate.formats.text import read_text
from bonsai.errors import BonsaiError
from bonsai.util.atomic import atomic_path


def header_names(cells: Sequence[Any], path: Path) -> list[str]:
    """Column names from a header row: stripped, unnamed ones called ``column_N``, no repeats."""
    names: list[str] = []
    seen: dict[str, int] = {}
    for index, cell in enumerate(cells, 1):
        name = "" if cell is None else str(cell).strip()
        if not name:
            name = f"column_{index}"
        if name in seen:
            raise BonsaiError(
                f"column '{name}' appears twice in the header (columns {seen[name]} and {index})",
                file=path,
                row=1,
            )
        seen[name] = index
        names.append(name)
    if all(name.startswith("column_") for name in names):
        raise BonsaiError(
            "the first row must hold the column names (instruction, input, output, ...)",
            file=path,
            row=1,
        )
    return names


def cell_text(value: Any) -> str | None:
    """A value as a table cell holds it: text as is, anything else as JSON; None stays None."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _delimiter(path: Path, first_line: str) -> str:
    if path.suffix.lower() == ".tsv":
        return "\t"
    # European spreadsheets save "CSV" with semicolons; a header names columns, so counting works.
    counts = {d: first_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] and not counts[","] else ","


def read_csv(path: Path) -> SourceTable:
    text = read_text(path)
    first_line = text.split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(path, first_line))
    old_limit = csv.field_size_limit()
    # Long fields are checked (and refused with row and field named) once parsed, not here.
    csv.field_size_limit(sys.maxsize)
    try:
        try:
            header = next(reader)
        except StopIteration:
            raise BonsaiError("the file is empty", file=path) from None
        columns = header_names(header, path)
        rows: list[SourceRow] = []
        for number, cells in enumerate(reader, 2):
            if not any(cells):
                continue
            if len(cells) > len(columns):
                extra_cells = cells[len(columns) :]
                if any(extra_cells):
                    raise BonsaiError(
                        f"the row has {len(cells)} cells but the header names {len(columns)}"
                        " columns",
                        file=path,
                        row=number,
                        hint="a text with a comma or line break must be in double quotes",
                    )
            values = {name: (cells[i] if i < len(cells) else "") for i, name in enumerate(columns)}
            rows.append(SourceRow(values, row=number))
    except csv.Error as exc:
        raise BonsaiError(f"broken CSV: {exc}", file=path, line=reader.line_num) from None
    finally:
        csv.field_size_limit(old_limit)
    if not rows:
        raise BonsaiError("the file has a header but no records", file=path)
    return SourceTable(rows, columns=columns)


def write_csv(rows: Iterable[dict[str, Any]], columns: list[str], out: Path) -> None:
    """CSV with a byte order mark, so that Excel opens it as UTF-8; every value round-trips."""
    with atomic_path(out) as tmp, tmp.open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f, lineterminator="\r\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if (v := cell_text(row.get(c))) is None else v for c in columns])
