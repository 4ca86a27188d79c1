"""CSV files (UTF-8, a byte order mark tolerated), and what every table format shares.

Rows are numbered as a spreadsheet shows them: the header is row 1, the first record row 2.

A spreadsheet runs a cell that begins with ``=``, ``+``, ``-`` or ``@`` (and, in some, a tab or
carriage return) as a formula. The export is meant for Excel, so such a cell is written with an
apostrophe in front (``'=1+2``), which makes it text; reading a CSV drops that one apostrophe
again (also from ``''=x``, written for a text that itself began ``'=x``), so texts round-trip.
A CSV file cannot tell an empty string from a missing value: an empty cell is "" for ``input``
and ``output`` and "no value" for the optional fields.
"""

from __future__ import annotations

import csv
import io
import json
import re
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


_FORMULA = re.compile(r"'*[=+\-@\t\r]")


def protect_formula(text: str) -> str:
    """``'=1+2`` for ``=1+2``: a spreadsheet shows it as text instead of running it."""
    return "'" + text if _FORMULA.match(text) else text


def unprotect_formula(text: str) -> str:
    """Undo :func:`protect_formula`."""
    return text[1:] if text[:1] == "'" and _FORMULA.match(text, 1) else text


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
    """Rows of a CSV file; a stray or unclosed double quote is refused, naming its line.

    Parsed strictly: a quoted field must end with a quote followed by a delimiter or the end of
    the line. A quoted field that runs over several lines and leaves its row short of cells
    swallowed the rows after it (``"Hello,world`` with no closing quote); that is refused too.
    """
    text = read_text(path)
    delimiter = _delimiter(path, text.split("\n", 1)[0])
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    old_limit = csv.field_size_limit()
    # Long fields are checked (and refused with row and field named) once parsed, not here.
    csv.field_size_limit(sys.maxsize)
    try:
        header = _next_row(reader, path, text, delimiter)
        if header is None:
            raise BonsaiError("the file is empty", file=path)
        columns = header_names([unprotect_formula(cell) for cell in header], path)
        rows: list[SourceRow] = []
        number = 1
        while True:
            start = reader.line_num + 1
            cells = _next_row(reader, path, text, delimiter)
            if cells is None:
                break
            number += 1
            if not any(cells):
                continue
            _check_cells(
                cells,
                columns,
                path,
                row=number,
                start=start,
                end=reader.line_num,
                delimiter=delimiter,
            )
            values = {
                name: (unprotect_formula(cells[i]) if i < len(cells) else "")
                for i, name in enumerate(columns)
            }
            rows.append(SourceRow(values, row=number))
    finally:
        csv.field_size_limit(old_limit)
    if not rows:
        raise BonsaiError("the file has a header but no records", file=path)
    return SourceTable(rows, columns=columns)


_QUOTE_HINT = 'a double quote inside a text is written twice (""); a quoted text ends with a quote'


def _next_row(reader: Any, path: Path, text: str, delimiter: str) -> list[str] | None:
    """The next row, None at the end; a broken quote names the line where its field began."""
    start = reader.line_num + 1
    try:
        return next(reader)
    except StopIteration:
        return None
    except csv.Error as exc:
        offset = _line_offset(text, start)
        opening = _broken_quote(text, offset, delimiter)
        line = start if opening is None else text.count("\n", 0, opening) + 1
        if "end of data" in str(exc):
            reason = "never closed: it runs to the end of the file"
        else:
            reason = "closed and followed by more text"
            if reader.line_num > line:
                reason += f" on line {reader.line_num}"
        raise BonsaiError(
            f"broken CSV: the quoted field that begins here is {reason}",
            file=path,
            line=line,
            hint=_QUOTE_HINT,
        ) from None


def _check_cells(
    cells: list[str],
    columns: list[str],
    path: Path,
    *,
    row: int,
    start: int,
    end: int,
    delimiter: str,
) -> None:
    """Refuse a row with cells beyond the header, or one that a stray quote ran together."""
    if end > start and len(cells) < len(columns):
        # A row short of cells whose multi-line cell holds lines that look like rows (they
        # have the delimiter) ran them together; a text with line breaks alone is fine.
        index = next(
            (
                i
                for i, cell in enumerate(cells)
                if any(delimiter in line for line in cell.splitlines()[1:])
            ),
            None,
        )
        if index is not None:
            line = start + sum(cell.count("\n") for cell in cells[:index])
            raise BonsaiError(
                f"a quoted field begins on line {line} and runs to line {end}, leaving row {row}"
                f" with {len(cells)} of {len(columns)} cells: a stray or unclosed double quote?",
                file=path,
                line=line,
                field=columns[index],
                hint=_QUOTE_HINT,
            )
    if len(cells) > len(columns) and any(cells[len(columns) :]):
        raise BonsaiError(
            f"the row has {len(cells)} cells but the header names {len(columns)} columns",
            file=path,
            row=row,
            line=start if end > start else None,
            hint="a text with a comma or line break must be in double quotes",
        )


def _line_offset(text: str, line: int) -> int:
    """Offset of the start of ``line`` (1-based) in ``text``."""
    offset = 0
    for _ in range(line - 1):
        found = text.find("\n", offset)
        if found < 0:
            return len(text)
        offset = found + 1
    return offset


def _broken_quote(text: str, pos: int, delimiter: str) -> int | None:
    """Offset of the opening quote of the first badly quoted field from ``pos`` on, if any."""
    separator = re.compile(f"[{re.escape(delimiter)}\r\n]")
    at_field_start = True
    while pos < len(text):
        if at_field_start and text[pos] == '"':
            opening, pos = pos, pos + 1
            while True:
                quote = text.find('"', pos)
                if quote < 0:
                    return opening
                if text.startswith('""', quote):
                    pos = quote + 2
                    continue
                if text[quote + 1 : quote + 2] not in ("", delimiter, "\n", "\r"):
                    return opening
                pos = quote + 1
                break
            at_field_start = False
            continue
        found = separator.search(text, pos)
        if found is None:
            return None
        pos, at_field_start = found.end(), True
    return None


def write_csv(rows: Iterable[dict[str, Any]], columns: list[str], out: Path) -> None:
    """CSV with a byte order mark, so that Excel opens it as UTF-8; every value round-trips.

    Cells that a spreadsheet would run as formulas are protected (see the module docstring).
    """
    with atomic_path(out) as tmp, tmp.open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f, lineterminator="\r\n")
        writer.writerow([protect_formula(c) for c in columns])
        for row in rows:
            writer.writerow(
                [
                    "" if (v := cell_text(row.get(c))) is None else protect_formula(v)
                    for c in columns
                ]
            )
