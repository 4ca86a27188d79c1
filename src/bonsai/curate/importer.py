"""Importing a file into a dataset: read, check, compare with the garden, write one changeset.

Re-importing matches records by ``id``. A record the file changes is updated only in the fields
the file carries (a file without a ``reasoning`` column leaves reasoning as it is). A value that
did not change keeps its provenance, so re-importing an export does not turn suggested
categories into human ones. Records the file lacks are kept unless ``delete_absent``.
The whole import is one :meth:`~bonsai.store.RecordStore.apply` call: all or nothing, undoable.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bonsai.curate.formats import (
    DEFAULT_MAX_FIELD_CHARS,
    SourceTable,
)
from bonsai.curate.formats.build import Incoming, build_records, check_required
from bonsai.curate.formats.detect import detect_schema, format_name, resolve_format
from bonsai.curate.formats.schemas import shape_rows
from bonsai.db import transaction
from bonsai.errors import BonsaiError
from bonsai.garden import Garden
from bonsai.records import EDITABLE_FIELDS, Record
from bonsai.store import Change, RecordStore

CHANGED_SAMPLE = 8
"""How many changed records an import report describes field by field."""


@dataclass
class ImportArgs:
    """What `bonsai data import` does."""

    path: Path
    """The file (or Hugging Face dataset folder) to read."""
    dataset: str
    """Dataset to create or update."""
    fmt: str | None = None
    """One of ``formats.IMPORT_FORMATS``; None: from the extension and the content."""
    mapping: dict[str, str] = field(default_factory=dict)
    """Source column → BONSAI field (or any new name), applied before anything else."""
    delete_absent: bool = False
    """Delete the dataset's records that the file does not have (recorded, undoable)."""
    dry_run: bool = False
    """Compare and report, write nothing."""
    split: str | None = None
    """Split of a Hugging Face DatasetDict (default 'train')."""
    max_field_chars: int = DEFAULT_MAX_FIELD_CHARS
    """Longest value accepted in one field, in characters."""

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        name = self.dataset.strip() if isinstance(self.dataset, str) else ""
        if not name or name != self.dataset or any(ord(c) < 32 for c in name):
            raise BonsaiError(
                f"invalid dataset name {self.dataset!r}",
                hint="a name without leading or trailing spaces, e.g. 'cats'",
            )
        if self.max_field_chars < 1:
            raise BonsaiError("--max-field-chars must be at least 1")
        for src, dst in self.mapping.items():
            if not src or not dst:
                raise BonsaiError(f"--map {src}={dst}: both sides need a column name")


@dataclass
class SourceRead:
    """Records read from a file, before they meet the garden."""

    incoming: list[Incoming]
    format: str
    notes: list[str]


@dataclass
class ImportReport:
    """What an import did (or, with ``dry_run``, would do)."""

    dataset: str
    file: Path
    format: str
    records: int
    """Records in the file."""
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    absent: int = 0
    """Records of the dataset the file does not have."""
    deleted: int = 0
    changed_fields: dict[str, list[str]] = field(default_factory=dict)
    """For the first few changed records: which fields changed."""
    changeset_id: int | None = None
    dry_run: bool = False
    notes: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "absent": self.absent,
            "deleted": self.deleted,
        }


def parse_mapping(items: Iterable[str]) -> dict[str, str]:
    """``["prompt=instruction", ...]`` → ``{"prompt": "instruction", ...}``."""
    mapping: dict[str, str] = {}
    for item in items:
        src, sep, dst = item.partition("=")
        if not sep or not src.strip() or not dst.strip():
            raise BonsaiError(f"--map {item!r}: write it as SOURCE=FIELD, e.g. prompt=instruction")
        mapping[src.strip()] = dst.strip()
    return mapping


# -- reading ------------------------------------------------------------------------------------


def _read_table(path: Path, container: str, split: str | None) -> SourceTable:
    if container == "json":
        from bonsai.curate.formats.jsonfmt import read_json

        return read_json(path)
    if container == "csv":
        from bonsai.curate.formats.tabular import read_csv

        return read_csv(path)
    if container == "xlsx":
        from bonsai.curate.formats.excel import read_xlsx

        return read_xlsx(path)
    if container == "parquet":
        from bonsai.curate.formats.arrow import read_parquet

        return read_parquet(path)
    from bonsai.curate.formats.arrow import read_hf

    return read_hf(path, split=split)


def _keys(table: SourceTable) -> set[str]:
    if table.columns is not None:
        return set(table.columns)
    keys: set[str] = set()
    for row in table.rows:
        keys.update(row.values)
    return keys


def _apply_mapping(table: SourceTable, mapping: dict[str, str], path: Path) -> None:
    if not mapping:
        return
    keys = _keys(table)
    found = ", ".join(sorted(keys)[:30])
    for src, dst in mapping.items():
        if src not in keys:
            raise BonsaiError(
                f"--map {src}={dst}: the file has no column '{src}' (found: {found})", file=path
            )
        if dst in keys and dst not in mapping:
            raise BonsaiError(
                f"--map {src}={dst}: the file already has a column '{dst}'",
                file=path,
                hint=f"rename that one too, e.g. --map {dst}=old_{dst}",
            )
    for row in table.rows:
        row.values = {mapping.get(k, k): v for k, v in row.values.items()}
    if table.columns is not None:
        table.columns = [mapping.get(c, c) for c in table.columns]


def read_source(
    path: str | Path,
    fmt: str | None = None,
    mapping: dict[str, str] | None = None,
    *,
    split: str | None = None,
    max_field_chars: int = DEFAULT_MAX_FIELD_CHARS,
) -> SourceRead:
    """Read and check every record of a file; raises :class:`BonsaiError` on the first problem."""
    path = Path(path)
    container, schema = resolve_format(path, fmt)
    table = _read_table(path, container, split)
    _apply_mapping(table, mapping or {}, path)
    schema = schema or detect_schema(_keys(table))
    notes = list(table.notes)
    rows = shape_rows(table.rows, schema, path, notes)
    if table.tabular and schema in ("flat", "dolly") and rows:
        check_required(set(rows[0].values), path, schema=schema)
    incoming = build_records(
        rows,
        path,
        schema=schema,
        tabular=table.tabular,
        max_field_chars=max_field_chars,
    )
    return SourceRead(incoming, format_name(container, schema, json_array=table.json_array), notes)


def read_records(
    path: str | Path, fmt: str | None = None, mapping: dict[str, str] | None = None, **options: Any
) -> list[Record]:
    """The records of a file, checked, without touching any garden."""
    return [item.record for item in read_source(path, fmt, mapping, **options).incoming]


# -- comparing with the garden ------------------------------------------------------------------


def _same(old: Any, new: Any) -> bool:
    """Equal, or a typed value that a text-only table (CSV) wrote as JSON and read back as text."""
    if old == new:
        return True
    if isinstance(new, str) and not isinstance(old, str) and old is not None:
        return json.dumps(old, ensure_ascii=False) == new
    return False


def _merge_extra(old: dict[str, Any], item: Incoming) -> dict[str, Any]:
    merged = dict(old)
    new = item.record.extra
    for key in item.extra_keys:
        if key in new:
            if key not in old or not _same(old[key], new[key]):
                merged[key] = new[key]
        elif key in merged and merged[key] not in ("", None):
            del merged[key]  # a blank cell where there was a value: the user cleared it
    return merged


def merge(old: Record, item: Incoming) -> Record:
    """``old`` updated with what the file carries for it; provenance kept where values match."""
    new = dataclasses.replace(old)
    incoming = item.record
    for name in item.fields:
        value = getattr(incoming, name)
        if getattr(old, name) == value:
            continue
        setattr(new, name, value)
        if name == "category":
            new.category_source = "human" if value else None
            new.category_confidence = None
            if item.derived_source_category:
                new.source_category = incoming.source_category
        elif name == "language":
            new.language_source = "human" if value else None
        elif name == "reasoning":
            new.reasoning_meta = incoming.reasoning_meta if value else None
    new.extra = _merge_extra(old.extra, item)
    return new


def changed_fields(old: Record, new: Record) -> list[str]:
    names = [name for name in EDITABLE_FIELDS if getattr(old, name) != getattr(new, name)]
    keys = dict.fromkeys([*old.extra, *new.extra])
    names += [f"extra.{k}" for k in keys if old.extra.get(k, ...) != new.extra.get(k, ...)]
    return names or [
        name
        for name in ("category_source", "language_source", "reasoning_meta")
        if getattr(old, name) != getattr(new, name)
    ]


def plan_import(
    existing: list[Record], incoming: list[Incoming], *, delete_absent: bool
) -> tuple[list[Change], dict[str, Any]]:
    """The changes an import makes, and its counts (see :class:`ImportReport`)."""
    current = {record.id: record for record in existing}
    changes: list[Change] = []
    counts: dict[str, Any] = {"added": 0, "changed": 0, "unchanged": 0, "changed_fields": {}}
    seen: set[str] = set()
    for item in incoming:
        record_id = item.record.id
        seen.add(record_id)
        old = current.get(record_id)
        if old is None:
            changes.append(Change(None, item.record))
            counts["added"] += 1
            continue
        new = merge(old, item)
        if new == old:
            counts["unchanged"] += 1
            continue
        changes.append(Change(old, new))
        counts["changed"] += 1
        if len(counts["changed_fields"]) < CHANGED_SAMPLE:
            counts["changed_fields"][record_id] = changed_fields(old, new)
    absent = [record for record in existing if record.id not in seen]
    counts["absent"] = len(absent)
    counts["deleted"] = len(absent) if delete_absent else 0
    if delete_absent:
        changes += [Change(record, None) for record in absent]
    return changes, counts


# -- the whole import ---------------------------------------------------------------------------


def run_import(garden: Garden, args: ImportArgs) -> ImportReport:
    source = read_source(
        args.path,
        args.fmt,
        args.mapping,
        split=args.split,
        max_field_chars=args.max_field_chars,
    )
    store = RecordStore(garden.db)
    # Compare and write under one write lock: an import running at the same time waits, then
    # plans on what this one wrote (planning outside it would overwrite that import's edits).
    with nullcontext() if args.dry_run else transaction(garden.db):
        existing = store.records(args.dataset) if args.dataset in store.dataset_names() else []
        changes, counts = plan_import(existing, source.incoming, delete_absent=args.delete_absent)
        report = _report(args, source, counts)
        if not args.dry_run:
            report.changeset_id = store.apply(
                args.dataset,
                changes,
                kind="import",
                description=f"import {args.path.name} ({source.format})",
                summary={"file": str(args.path), "format": source.format, **report.counts()},
                read_in_transaction=True,
            )
    return report


def _report(args: ImportArgs, source: SourceRead, counts: dict[str, Any]) -> ImportReport:
    return ImportReport(
        dataset=args.dataset,
        file=args.path,
        format=source.format,
        records=len(source.incoming),
        added=counts["added"],
        changed=counts["changed"],
        unchanged=counts["unchanged"],
        absent=counts["absent"],
        deleted=counts["deleted"],
        changed_fields=counts["changed_fields"],
        dry_run=args.dry_run,
        notes=source.notes,
    )


def import_file(
    garden: Garden,
    path: str | Path,
    dataset: str,
    fmt: str | None = None,
    mapping: dict[str, str] | None = None,
    delete_absent: bool = False,
    dry_run: bool = False,
    *,
    split: str | None = None,
    max_field_chars: int = DEFAULT_MAX_FIELD_CHARS,
) -> ImportReport:
    """Import ``path`` into ``dataset`` of ``garden`` (see :class:`ImportArgs`)."""
    args = ImportArgs(
        Path(path),
        dataset,
        fmt=fmt,
        mapping=dict(mapping or {}),
        delete_absent=delete_absent,
        dry_run=dry_run,
        split=split,
        max_field_chars=max_field_chars,
    )
    return run_import(garden, args)
