"""Flat rows → records: every value checked, ids settled, what the file carries remembered.

Rules:

- ``instruction`` and ``output`` are required columns, and each must show some text: empty,
  null, spaces only, or only invisible characters (zero-width, bidi marks, NUL) is an error.
- ``category`` is mapped to the seven (Dolly's names included); a category the file gives is a
  human label (``category_source='human'``), and the file's own value is kept in
  ``source_category`` unless the file has that column. ``language`` given → ``language_source``
  is 'human'. A ``reasoning`` from a file gets ``reasoning_meta={'source': 'import', ...}``.
- Any other column goes to ``extra``. In a table an empty cell of such a column means "no value".
- ``id``: the file's own when it has one (repeated ids are an error); otherwise
  :func:`~bonsai.records.content_id`, with ``-2``, ``-3``, ... for exact repeats.
- A value longer than ``max_field_chars`` characters is refused, naming its row and field;
  so is NaN or Infinity, and a value nested deeper than :data:`MAX_DEPTH`.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bonsai.curate.formats import SourceRow
from bonsai.errors import BonsaiError
from bonsai.records import (
    CATEGORIES,
    EDITABLE_FIELDS,
    SOURCE_CATEGORY_MAP,
    Record,
    content_id,
    describe_invisible,
    has_visible_text,
    normalise_category,
)

REQUIRED = ("instruction", "output")
MAX_DEPTH = 32
"""Deepest nesting of lists and objects kept in an extra column."""
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
DOLLY_LABELS = {"input": "context", "output": "response"}
"""How a Dolly file names the fields (for messages)."""
_CONSUMED = frozenset({"id", *EDITABLE_FIELDS})


@dataclass
class Incoming:
    """A record read from a file, with what the file says about it."""

    record: Record
    fields: frozenset[str]
    """Editable fields the file gives for this record (others stay as they are in the garden)."""
    extra_keys: frozenset[str]
    """Extra columns the file has for this record (in a table: also those left blank)."""
    source: SourceRow
    derived_source_category: bool = False
    """``source_category`` was taken from the file's category (the file has no such column):
    it replaces the garden's only when the category itself changes."""


def check_required(keys: Iterable[str], path: Path, *, schema: str, **where: Any) -> None:
    missing = [name for name in REQUIRED if name not in keys]
    if not missing:
        return
    if schema == "dolly":
        missing = ["response" if name == "output" else name for name in missing]
    found = ", ".join(sorted(keys)[:30]) or "nothing"
    raise BonsaiError(
        f"missing required column(s): {', '.join(missing)} (found: {found})",
        file=path,
        hint="--map SRC=DST renames a column, e.g. --map prompt=instruction --map answer=output",
        **where,
    )


def _blank(value: Any) -> bool:
    return value is None or value == ""


def _as_text(value: Any, name: str, path: Path, source: SourceRow) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        _check_finite(value, name, path, source)
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    raise BonsaiError(
        f"must be text, not a {type(value).__name__}", file=path, field=name, **source.where()
    )


def _check_finite(value: float, name: str, path: Path, source: SourceRow) -> None:
    if not math.isfinite(value):
        raise BonsaiError(
            f"holds {value}, which is not a number JSON can store, nor text",
            file=path,
            field=name,
            hint='write it as text ("NaN") or leave the value out',
            **source.where(),
        )


def _plain(value: Any, name: str, path: Path, source: SourceRow, depth: int = 0) -> Any:
    """A value the garden can store as JSON: dates (Excel, Parquet) become ISO text."""
    if depth > MAX_DEPTH:
        raise BonsaiError(
            f"is nested more than {MAX_DEPTH} levels deep", file=path, field=name, **source.where()
        )
    if isinstance(value, float):
        _check_finite(value, name, path, source)
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v, name, path, source, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, name, path, source, depth + 1) for v in value]
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        raise BonsaiError("holds binary data, not text", file=path, field=name, **source.where())
    return str(value)  # Decimal, timedelta, ...: their text is what a person reads


def _check_size(value: Any, name: str, limit: int, path: Path, source: SourceRow) -> None:
    if not isinstance(value, str):
        return
    if len(value) > limit:
        raise BonsaiError(
            f"the value has {len(value):,} characters, more than the limit of {limit:,}",
            file=path,
            field=name,
            hint="shorten it, or raise the limit with --max-field-chars",
            **source.where(),
        )
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise BonsaiError(
                f"holds an unpaired surrogate (\\u{ord(value[exc.start]):04x}), which is not"
                " valid text",
                file=path,
                field=name,
                **source.where(),
            ) from None


def _category(raw: Any, path: Path, source: SourceRow) -> str | None:
    text = _as_text(raw, "category", path, source).strip()
    if not text:
        return None
    category = normalise_category(text)
    if category is None:
        dolly = sorted(k for k in SOURCE_CATEGORY_MAP if k not in CATEGORIES)
        raise BonsaiError(
            f"unknown category '{text}'",
            file=path,
            field="category",
            hint=f"valid: {', '.join(CATEGORIES)} (Dolly's {', '.join(dolly)} map to them)",
            **source.where(),
        )
    return category


def _visible_text(
    values: dict[str, Any], name: str, path: Path, source: SourceRow, label: str
) -> str:
    """A required text field, refused when it shows nothing."""
    raw = values.get(name)
    text = _as_text(raw, label, path, source)
    if has_visible_text(text):
        return text
    hint = None
    if not text:
        what = "is empty" if raw is not None else "is missing (null or an empty cell)"
        if raw is None and path.suffix.lower() == ".xlsx":
            hint = "a merged cell keeps its value in its first row only; unmerge and fill each row"
    elif not text.strip():
        what = "holds only spaces"
    else:
        what = f"holds only invisible characters ({describe_invisible(text)})"
    raise BonsaiError(
        f"the {label} {what}; every record needs a visible instruction and answer",
        file=path,
        field=label,
        hint=hint,
        **source.where(),
    )


def _record_id(raw: Any, path: Path, source: SourceRow) -> str:
    text = _as_text(raw, "id", path, source).strip()
    if not has_visible_text(text):
        what = "blank" if not text else f"only invisible characters ({describe_invisible(text)})"
        raise BonsaiError(
            f"the id is {what}",
            file=path,
            field="id",
            hint="give a real id, or leave the cell empty for one made from the content",
            **source.where(),
        )
    if _CONTROL.search(text):
        raise BonsaiError(
            f"the id {text!r} holds a control character (a line break or tab?)",
            file=path,
            field="id",
            **source.where(),
        )
    return text


def build_record(
    source: SourceRow,
    path: Path,
    *,
    tabular: bool,
    max_field_chars: int,
    labels: dict[str, str] | None = None,
) -> tuple[Incoming, bool]:
    """The record for one flat row, and whether its id came from the file.

    ``labels`` names fields as the file does, for messages (Dolly: 'response' for output).
    """
    values = source.values
    labels = labels or {}
    for name, value in values.items():
        _check_size(value, labels.get(name, name), max_field_chars, path, source)
    record = Record(
        id="",
        instruction=_visible_text(values, "instruction", path, source, "instruction"),
        input=_as_text(values.get("input"), labels.get("input", "input"), path, source),
        output=_visible_text(values, "output", path, source, labels.get("output", "output")),
    )
    given = {"instruction", "output"} | ({"input"} & values.keys())
    derived = False
    if "category" in values:
        record.category = _category(values["category"], path, source)
        record.category_source = "human" if record.category else None
        given.add("category")
        derived = "source_category" not in values and record.category is not None
        if derived:
            record.source_category = _as_text(values["category"], "category", path, source).strip()
    for name in ("language", "reasoning", "source_category"):
        if name in values:
            text = _as_text(values[name], name, path, source)
            text = text if name == "reasoning" else text.strip()
            setattr(record, name, text or None)
            given.add(name)
    if record.language:
        record.language_source = "human"
    if record.reasoning:
        record.reasoning_meta = {"source": "import", "file": path.name}
    extra_keys = values.keys() - _CONSUMED
    record.extra = {
        key: _plain(values[key], key, path, source)
        for key in values
        if key in extra_keys and not (tabular and _blank(values[key]))
    }
    raw_id = values.get("id")
    explicit = not _blank(raw_id)
    record.id = (
        _record_id(raw_id, path, source)
        if explicit
        else content_id(record.instruction, record.input, record.output)
    )
    item = Incoming(record, frozenset(given), frozenset(extra_keys), source, derived)
    return item, explicit


def build_records(
    rows: list[SourceRow],
    path: Path,
    *,
    schema: str,
    tabular: bool,
    max_field_chars: int,
) -> list[Incoming]:
    """Records for all rows, with ids settled (see the module docstring)."""
    incoming: list[Incoming] = []
    explicit_at: dict[str, SourceRow] = {}
    content_seen: dict[str, int] = {}
    for source in rows:
        if not tabular:  # a table's header was checked once, before the rows
            check_required(source.values.keys(), path, schema=schema, **source.where())
        item, explicit = build_record(
            source,
            path,
            tabular=tabular,
            max_field_chars=max_field_chars,
            labels=DOLLY_LABELS if schema == "dolly" else None,
        )
        record = item.record
        if explicit:
            if record.id in explicit_at:
                first = explicit_at[record.id]
                raise BonsaiError(
                    f"id '{record.id}' appears twice: {first.describe()} and {source.describe()}",
                    file=path,
                    field="id",
                    hint="ids must be unique within a file",
                )
            explicit_at[record.id] = source
        else:
            count = content_seen.get(record.id, 0) + 1
            content_seen[record.id] = count
            if count > 1:  # an exact repeat: keep it, under its own stable id
                record.id = f"{record.id}-{count}"
        incoming.append(item)
    ids = [item.record.id for item in incoming]
    if len(set(ids)) != len(ids):  # a derived id equal to an id from the file
        seen: dict[str, Incoming] = {}
        for item in incoming:
            if item.record.id in seen:
                raise BonsaiError(
                    f"id '{item.record.id}' appears twice: {seen[item.record.id].source.describe()}"
                    f" and {item.source.describe()}",
                    file=path,
                    field="id",
                )
            seen[item.record.id] = item
    return incoming
