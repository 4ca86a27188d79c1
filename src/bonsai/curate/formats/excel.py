"""Excel workbooks (.xlsx) for editing records by hand and importing them again.

Reading uses openpyxl; writing is in :mod:`.excel_write`.

The export is meant to be pleasant to edit: a bold, frozen header, wide wrapped text columns, a
drop-down of the seven categories and an autofilter. Every text is stored as text, never as a
formula, so a value starting with ``=``, ``+``, ``-`` or ``@`` is neither run nor changed.

Characters XML cannot hold (control characters, and ``\\r``, which XML readers turn into ``\\n``)
are written the way Excel writes them, ``_x000D_``; a literal ``_x000D_`` in the text is written
as ``_x005F_x000D_``. Reading undoes both, so texts come back exactly, ``\r\n`` included, also
after Excel or LibreOffice saved the file. (One corner case: once Excel has re-saved a workbook,
openpyxl cannot tell a typed ``_x000D_`` from an escaped ``\r``; it reads as ``\r``.)

A hidden sheet ``_bonsai`` records the dataset, the export time, and which columns hold JSON.
"""

from __future__ import annotations

import contextlib
import json
import re
import zipfile
from pathlib import Path
from typing import Any

from bonsai.curate.formats import SourceRow, SourceTable
from bonsai.curate.formats.tabular import header_names
from bonsai.curate.formats.text import check_file
from bonsai.errors import BonsaiError

EXCEL_CELL_LIMIT = 32_767
"""The most characters an Excel cell holds; longer texts are refused, never cut."""

META_SHEET = "_bonsai"
RECORDS_SHEET = "records"

WIDTHS = {
    "id": 18,
    "instruction": 50,
    "input": 40,
    "output": 60,
    "category": 20,
    "language": 10,
    "reasoning": 50,
    "source_category": 20,
}
# A "_" that starts "_xHHHH_" is escaped as "_x005F_"; a lookahead, because two such patterns
# can share an underscore ("_x005F_x0041_"), and each must be escaped.
_NEEDS_ESCAPE = re.compile(r"_(?=x[0-9A-Fa-f]{4}_)|[\x00-\x08\x0b-\x1f\ufffe\uffff]")
_ESCAPED = re.compile(r"_x([0-9A-Fa-f]{4})_")


def escape_text(text: str) -> str:
    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "_":  # starts a literal "_xHHHH_" in the text
            return "_x005F_"
        return f"_x{ord(match.group(0)):04X}_"

    return _NEEDS_ESCAPE.sub(sub, text)


def unescape_text(text: str) -> str:
    if "_x" not in text:
        return text
    return _ESCAPED.sub(lambda m: chr(int(m.group(1), 16)), text)


# -- reading ------------------------------------------------------------------------------------


def _open_workbook(path: Path) -> Any:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    check_file(path)
    with path.open("rb") as f:
        magic = f.read(8)
    if not magic:
        raise BonsaiError("the file is empty", file=path)
    if magic.startswith(b"\xd0\xcf\x11\xe0"):
        raise BonsaiError(
            "this is an old .xls workbook, which cannot be read", file=path, hint="save as .xlsx"
        )
    try:
        # data_only=False: a formula someone typed comes back as its text ("=A1+1").
        return load_workbook(path, read_only=True, data_only=False)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, ValueError, OSError) as exc:
        raise BonsaiError(
            f"not an Excel workbook (.xlsx): {type(exc).__name__}: {exc}",
            file=path,
            hint="save it from Excel or LibreOffice as 'Excel Workbook (.xlsx)'",
        ) from None


def _json_columns(workbook: Any) -> frozenset[str]:
    if META_SHEET not in workbook.sheetnames:
        return frozenset()
    for cells in workbook[META_SHEET].iter_rows(values_only=True):
        key, value = (*cells, None, None)[:2]
        if key == "json_columns" and isinstance(value, str):
            try:
                return frozenset(json.loads(unescape_text(value)))
            except (ValueError, TypeError):
                return frozenset()
    return frozenset()


def read_xlsx(path: Path) -> SourceTable:
    """Rows of the first visible sheet (not ``_bonsai``); row 1 holds the column names."""
    workbook = _open_workbook(path)
    try:
        sheets = [
            ws
            for ws in workbook.worksheets
            if ws.title != META_SHEET and getattr(ws, "sheet_state", "visible") == "visible"
        ]
        if not sheets:
            raise BonsaiError("the workbook has no visible sheet", file=path)
        sheet = sheets[0]
        notes = []
        if len(sheets) > 1:
            others = ", ".join(f"'{ws.title}'" for ws in sheets[1:])
            notes.append(f"read sheet '{sheet.title}'; other sheets ignored: {others}")
        json_columns = _json_columns(workbook)
        rows_iter = sheet.iter_rows(values_only=True)
        header = next(rows_iter, None)
        if header is None or all(cell is None for cell in header):
            raise BonsaiError(
                f"sheet '{sheet.title}' is empty or its first row is blank",
                file=path,
                row=1,
                hint="row 1 must hold the column names (instruction, input, output, ...)",
            )
        columns = header_names(
            [unescape_text(c) if isinstance(c, str) else c for c in header], path
        )
        rows: list[SourceRow] = []
        for number, cells in enumerate(rows_iter, 2):
            if all(cell is None or cell == "" for cell in cells):
                continue
            if len(cells) > len(columns):
                for index in range(len(columns), len(cells)):
                    if cells[index] not in (None, ""):
                        columns.append(f"column_{index + 1}")
            values = {}
            for index, name in enumerate(columns):
                value = cells[index] if index < len(cells) else None
                if isinstance(value, str):
                    value = unescape_text(value)
                    if name in json_columns:
                        # Edited by hand into text that is not JSON: keep the text.
                        with contextlib.suppress(ValueError):
                            value = json.loads(value)
                values[name] = value
            rows.append(SourceRow(values, row=number))
    finally:
        workbook.close()
    if not rows:
        raise BonsaiError(f"sheet '{sheet.title}' has a header but no records", file=path)
    for row in rows:  # columns found late (values beyond the header) exist in every row
        for name in columns:
            row.values.setdefault(name, None)
    return SourceTable(rows, columns=columns, notes=notes, json_columns=json_columns)
