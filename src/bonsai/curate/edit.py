"""Fixing records one by one: edit a record in a text editor, or remove records.

An edit writes the record as a JSON file (the same object an Alpaca export holds for it), opens
the editor on it, and reads it back through the import checks, so an edit can be refused for
exactly the reasons an import can (an empty output, an unknown category, ...). It is recorded as
one change, like every other write, and ``bonsai data undo`` reverts it. A refused edit stays in
its file, which the message names: nothing typed is lost.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bonsai.curate.formats.schemas import flat_row
from bonsai.curate.importer import changed_fields, plan_import, read_source
from bonsai.errors import BonsaiError
from bonsai.records import Record
from bonsai.store import Change, RecordStore


@dataclass
class EditResult:
    record_id: str
    changeset_id: int | None
    """None when the edit changed nothing."""
    fields: list[str]
    """Fields the edit changed."""


def editor_command() -> list[str]:
    """``$VISUAL``, else ``$EDITOR``, else ``vi``, split as a shell would."""
    raw = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    try:
        command = shlex.split(raw)
    except ValueError as exc:
        raise BonsaiError(
            f"cannot read the editor command {raw!r}: {exc}", field="EDITOR"
        ) from None
    if not command:
        raise BonsaiError("the editor command is empty", field="EDITOR")
    return command


def _existing(store: RecordStore, dataset: str, record_id: str) -> Record:
    record = store.get(dataset, record_id)
    if record is None:
        raise BonsaiError(
            f"no record '{record_id}' in dataset '{dataset}'",
            hint=f"`bonsai data show --dataset {dataset}` lists records with their ids",
        )
    return record


def _draft(record: Record) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="bonsai-edit-"))
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in record.id)[:80] or "record"
    path = folder / f"{name}.json"
    # A one-element array is a valid Alpaca file: a refused edit can be imported once fixed.
    text = json.dumps([flat_row(record)], ensure_ascii=False, indent=2)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def _run_editor(path: Path) -> None:
    command = [*editor_command(), str(path)]
    try:
        finished = subprocess.run(command, check=False)
    except OSError as exc:
        raise BonsaiError(
            f"cannot start the editor '{command[0]}': {exc.strerror or exc}",
            field="EDITOR",
            hint="set EDITOR, e.g. EDITOR=nano",
        ) from None
    if finished.returncode != 0:
        raise BonsaiError(
            f"the editor exited with status {finished.returncode}; nothing was changed",
            file=path,
        )


def _read_back(path: Path, old: Record, dataset: str) -> Change | None:
    kept = f"your edit is kept in {path}; fix it and `bonsai data import {path} -d {dataset}`"
    try:
        (item,) = read_source(path, "alpaca").incoming
    except ValueError:
        raise BonsaiError("keep exactly one record in the file", file=path, hint=kept) from None
    except BonsaiError as exc:
        exc.hint = f"{exc.hint}; {kept}" if exc.hint else kept
        raise
    if item.record.id != old.id:
        raise BonsaiError(
            f"the id changed from '{old.id}' to '{item.record.id}'; an edit keeps the id",
            file=path,
            field="id",
            hint=kept,
        )
    # Extra keys the edit removed are removed from the record too.
    item = dataclasses.replace(item, extra_keys=item.extra_keys | frozenset(old.extra))
    changes, _ = plan_import([old], [item], delete_absent=False)
    return changes[0] if changes else None


def edit_record(store: RecordStore, dataset: str, record_id: str) -> EditResult:
    """Open the record in the user's editor; store what they saved as one undoable change."""
    old = _existing(store, dataset, record_id)
    path = _draft(old)
    before = path.read_text(encoding="utf-8")
    _run_editor(path)
    after = path.read_text(encoding="utf-8")
    if after == before or not after.strip():
        _discard(path)
        return EditResult(record_id, None, [])
    change = _read_back(path, old, dataset)
    if change is None:
        _discard(path)
        return EditResult(record_id, None, [])
    assert change.after is not None
    try:
        changeset = store.apply(
            dataset, [change], kind="edit", description=f"edit {record_id}", summary={"changed": 1}
        )
    except BonsaiError as exc:  # changed meanwhile by another command, or the database is busy
        exc.hint = f"{exc.hint}; your edit is kept in {path}" if exc.hint else f"kept in {path}"
        raise
    _discard(path)
    return EditResult(record_id, changeset, changed_fields(old, change.after))


def remove_records(store: RecordStore, dataset: str, record_ids: Sequence[str]) -> int:
    """Delete the records (all named ids must exist) as one undoable change; returns its id."""
    if not record_ids:
        raise BonsaiError("name the records to remove: bonsai data rm ID [ID ...]")
    unique = list(dict.fromkeys(record_ids))
    records = [_existing(store, dataset, record_id) for record_id in unique]
    shown = ", ".join(unique[:5]) + (f" and {len(unique) - 5} more" if len(unique) > 5 else "")
    changeset = store.apply(
        dataset,
        [Change(record, None) for record in records],
        kind="delete",
        description=f"rm {shown}",
        summary={"deleted": len(records)},
    )
    assert changeset is not None, "deleting existing records always changes something"
    return changeset


def _discard(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.parent.rmdir()
