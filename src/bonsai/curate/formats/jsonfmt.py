"""JSON sources: an array of objects (Alpaca style) or one object per line (JSON Lines).

An array is read element by element with ``raw_decode`` so that every record knows the line it
starts on, and a syntax error reports the line and column of the whole document.

Stricter than Python's ``json``: a key twice in one object (which ``json`` resolves silently,
the last one winning), ``NaN`` and ``Infinity`` (not JSON at all), and nesting too deep to read
are refused, naming the record's line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from bonsai.curate.formats import SourceRow, SourceTable
from bonsai.curate.formats.text import read_text
from bonsai.errors import BonsaiError
from bonsai.util.atomic import atomic_path

_WS = re.compile(r"[ \t\n\r]*")


class _Refused(ValueError):
    """Raised inside the decoder; becomes a BonsaiError naming the record's line."""


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) < len(pairs):
        seen: set[str] = set()
        twice = next(key for key, _ in pairs if key in seen or seen.add(key))  # type: ignore[func-returns-value]
        raise _Refused(f"the key '{twice}' appears twice in one object (which one is meant?)")
    return obj


def _constant(name: str) -> Any:
    raise _Refused(f"{name} is not valid JSON (write it as a string, or leave the value out)")


_DECODER = json.JSONDecoder(object_pairs_hook=_object, parse_constant=_constant)


def _decode(text: str, pos: int, path: Path, line: int) -> tuple[Any, int]:
    """``raw_decode`` at ``pos``; what the decoder refuses becomes an error at ``line``."""
    try:
        return _DECODER.raw_decode(text, pos)
    except _Refused as exc:
        raise BonsaiError(str(exc), file=path, line=line) from None
    except RecursionError:
        raise BonsaiError(
            "the JSON is nested too deeply to read (thousands of levels)", file=path, line=line
        ) from None


def read_json(path: Path) -> SourceTable:
    """Objects of a JSON array or a JSON Lines file (told apart by the first character)."""
    text = read_text(path)
    start = _WS.match(text, 0).end()  # type: ignore[union-attr]
    if text[start] == "[":
        return SourceTable(_read_array(path, text, start), json_array=True)
    return SourceTable(_read_lines(path, text))


def _syntax_error(path: Path, exc: json.JSONDecodeError, *, line_offset: int = 0) -> BonsaiError:
    return BonsaiError(
        f"broken JSON: {exc.msg}",
        file=path,
        line=exc.lineno + line_offset,
        column=exc.colno,
    )


def _position(text: str, pos: int) -> tuple[int, int]:
    line = text.count("\n", 0, pos) + 1
    return line, pos - (text.rfind("\n", 0, pos) + 1) + 1


def _read_array(path: Path, text: str, start: int) -> list[SourceRow]:
    rows: list[SourceRow] = []
    pos = _WS.match(text, start + 1).end()  # type: ignore[union-attr]
    line, counted_to = 1, 0
    if pos < len(text) and text[pos] == "]":
        raise BonsaiError("the JSON array is empty: no records", file=path)
    while True:
        line += text.count("\n", counted_to, pos)  # counted incrementally: O(file) in all
        counted_to = pos
        try:
            obj, end = _decode(text, pos, path, line)
        except json.JSONDecodeError as exc:
            raise _syntax_error(path, exc) from None
        if not isinstance(obj, dict):
            raise BonsaiError(
                f"record {len(rows) + 1} is a JSON {type(obj).__name__}, not an object",
                file=path,
                line=line,
            )
        rows.append(SourceRow(obj, line=line))
        pos = _WS.match(text, end).end()  # type: ignore[union-attr]
        if pos >= len(text):
            where = _position(text, pos)
            raise BonsaiError(
                "broken JSON: the array is not closed with ']'",
                file=path,
                line=where[0],
                column=where[1],
            )
        if text[pos] == ",":
            pos = _WS.match(text, pos + 1).end()  # type: ignore[union-attr]
            continue
        if text[pos] == "]":
            break
        where = _position(text, pos)
        raise BonsaiError(
            "broken JSON: expected ',' or ']' after a record",
            file=path,
            line=where[0],
            column=where[1],
        )
    rest = _WS.match(text, pos + 1).end()  # type: ignore[union-attr]
    if rest < len(text):
        where = _position(text, rest)
        raise BonsaiError(
            "broken JSON: extra data after the array", file=path, line=where[0], column=where[1]
        )
    return rows


def _lines(text: str) -> Iterator[str]:
    """Lines one at a time (a big file is not copied into a list of lines first).

    Split at "\n" only, unlike splitlines(): U+2028 and friends are legal inside JSON strings.
    """
    start = 0
    while start <= len(text):
        end = text.find("\n", start)
        if end < 0:
            end = len(text)
        yield text[start:end]
        start = end + 1


def _read_lines(path: Path, text: str) -> list[SourceRow]:
    rows: list[SourceRow] = []
    for number, raw in enumerate(_lines(text), 1):
        line = raw.strip(" \t\r")
        if not line:
            continue
        try:
            obj, end = _decode(line, 0, path, number)
            if _WS.match(line, end).end() < len(line):  # type: ignore[union-attr]
                raise json.JSONDecodeError("Extra data", line, end)
        except json.JSONDecodeError as exc:
            indent = len(raw) - len(raw.lstrip(" \t\r"))
            hint = None
            if number == 1 and line == "{":
                hint = (
                    "JSON Lines needs one whole object per line; a pretty-printed file needs [...]"
                )
            raise BonsaiError(
                f"broken JSON Lines line: {exc.msg}",
                file=path,
                line=number,
                column=exc.colno + indent,
                hint=hint,
            ) from None
        if not isinstance(obj, dict):
            raise BonsaiError(
                f"each line must be a JSON object, this one is a {type(obj).__name__}",
                file=path,
                line=number,
            )
        rows.append(SourceRow(obj, line=number))
    return rows


def write_json(objects: Iterable[dict[str, Any]], out: Path, *, lines: bool) -> None:
    """Write objects as a JSON array (indented) or as JSON Lines, atomically, in UTF-8."""
    with atomic_path(out) as tmp, tmp.open("w", encoding="utf-8", newline="\n") as f:
        if lines:
            for obj in objects:
                f.write(json.dumps(obj, ensure_ascii=False))
                f.write("\n")
            return
        f.write("[")
        first = True
        for obj in objects:
            f.write("\n  " if first else ",\n  ")
            f.write(json.dumps(obj, ensure_ascii=False, indent=2).replace("\n", "\n  "))
            first = False
        f.write("\n]\n")
