"""Records in the garden database, with a history of every change that can be listed and undone.

All writes go through :meth:`RecordStore.apply`, which stores the new state of each record and its
state before, as one changeset, in one transaction. Undo restores the "before" states.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Any

from bonsai.db import transaction
from bonsai.errors import BonsaiError, ConflictError
from bonsai.records import Record

_COLUMNS = (
    "id",
    "instruction",
    "input",
    "output",
    "category",
    "language",
    "reasoning",
    "source_category",
    "category_source",
    "category_confidence",
    "language_source",
    "split",
    "shard",
    "reasoning_meta",
    "extra",
)


@dataclass
class Change:
    """One record's state before and after a change; ``None`` means absent."""

    before: Record | None
    after: Record | None


@dataclass
class Changeset:
    id: int
    kind: str
    description: str
    summary: dict[str, Any]
    created_at: float
    undone_by: int | None
    records: int


# Rows are read as plain tuples and given to Record by position (a third faster than by name
# through sqlite3.Row, on 16k records), so the columns must be Record's fields, in order.
assert tuple(f.name for f in fields(Record)) == _COLUMNS, "store columns must follow Record"

_ID_CHUNK = 500
"""Record ids per query (SQLite allows 999 parameters in older builds)."""

_SORTED_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode
_JSON = json.JSONEncoder(ensure_ascii=False).encode
"""Encoders built once: json.dumps with options builds a new encoder on every call."""


def _row_to_record(row: tuple[Any, ...]) -> Record:
    values: dict[str, Any] = dict(zip(_COLUMNS, row, strict=True))
    meta, extra = values["reasoning_meta"], values["extra"]
    values["reasoning_meta"] = json.loads(meta) if meta else None
    values["extra"] = json.loads(extra) if extra and extra != "{}" else {}
    return Record(**values)


def _record_values(record: Record) -> tuple[Any, ...]:
    values = [getattr(record, name) for name in _COLUMNS]
    meta, extra = values[-2:]
    values[-2] = _SORTED_JSON(meta) if meta else None
    values[-1] = _SORTED_JSON(extra) if extra else "{}"
    return tuple(values)


def _dump(record: Record | None) -> str | None:
    # vars() rather than asdict(): a record's values are plain JSON, and asdict's deep copy
    # dominated the time of a 16k-record import.
    return None if record is None else _JSON(vars(record))


def _load(text: str | None) -> Record | None:
    return None if text is None else Record.from_dict(json.loads(text))


class RecordStore:
    """Datasets and their records in one garden database."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    # -- datasets -------------------------------------------------------------------------------

    def dataset_names(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT name FROM datasets ORDER BY name")]

    def dataset_id(self, name: str, *, create: bool = False) -> int:
        row = self.conn.execute("SELECT id FROM datasets WHERE name = ?", (name,)).fetchone()
        if row:
            return int(row[0])
        if not create:
            known = ", ".join(self.dataset_names()) or "none yet"
            raise BonsaiError(
                f"no dataset named '{name}'",
                hint=f"datasets in this garden: {known}; `bonsai data import` creates one",
            )
        cur = self.conn.execute(
            "INSERT INTO datasets (name, created_at) VALUES (?, ?)", (name, time.time())
        )
        assert cur.lastrowid is not None  # set by the INSERT just run
        return cur.lastrowid

    def count(self, dataset: str) -> int:
        ds = self.dataset_id(dataset)
        return int(
            self.conn.execute("SELECT COUNT(*) FROM records WHERE dataset_id=?", (ds,)).fetchone()[
                0
            ]
        )

    # -- reading --------------------------------------------------------------------------------

    def records(
        self, dataset: str, *, split: str | None = None, shard: int | None = None
    ) -> list[Record]:
        """The dataset's records in their order, optionally only one split or shard."""
        ds = self.dataset_id(dataset)
        sql = f"SELECT {', '.join(_COLUMNS)} FROM records WHERE dataset_id = ?"
        params: list[Any] = [ds]
        if split is not None:
            sql += " AND split = ?"
            params.append(split)
        if shard is not None:
            sql += " AND shard = ?"
            params.append(shard)
        sql += " ORDER BY position"
        return [_row_to_record(row) for row in self._tuples(sql, params)]

    def _tuples(self, sql: str, params: Sequence[Any]) -> sqlite3.Cursor:
        """Rows as plain tuples, whatever the connection's row factory."""
        cursor = self.conn.cursor()
        cursor.row_factory = None
        return cursor.execute(sql, params)

    def get(self, dataset: str, record_id: str) -> Record | None:
        ds = self.dataset_id(dataset)
        row = self._tuples(
            f"SELECT {', '.join(_COLUMNS)} FROM records WHERE dataset_id = ? AND id = ?",
            (ds, record_id),
        ).fetchone()
        return _row_to_record(row) if row else None

    # -- writing --------------------------------------------------------------------------------

    def apply(
        self,
        dataset: str,
        changes: Sequence[Change],
        *,
        kind: str,
        description: str,
        summary: dict[str, Any] | None = None,
        read_in_transaction: bool = False,
    ) -> int | None:
        """Write ``changes`` and their history as one changeset, atomically.

        Changes whose before and after are equal are dropped. Returns the changeset id, or None
        when nothing changed (no empty changesets clutter the history). Each change's before
        must be the record as stored, else nothing is written (:class:`ConflictError`); a caller
        that read them inside the transaction this joins says so with ``read_in_transaction``,
        which skips reading them again.
        """
        real = [c for c in changes if c.before != c.after]
        if not real:
            return None
        now = time.time()
        verified = read_in_transaction and self.conn.in_transaction  # the caller's, joined here
        with transaction(self.conn):
            ds = self.dataset_id(dataset, create=True)
            if not verified:
                self._check_current(dataset, ds, real)
            cur = self.conn.execute(
                "INSERT INTO changesets (dataset_id, kind, description, summary, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (ds, kind, description, json.dumps(summary or {}, ensure_ascii=False), now),
            )
            assert cur.lastrowid is not None  # set by the INSERT just run
            changeset_id = cur.lastrowid
            self._write(ds, real, now)
            self.conn.executemany(
                "INSERT INTO record_changes (changeset_id, record_id, before, after)"
                " VALUES (?, ?, ?, ?)",
                [
                    (changeset_id, (c.after or c.before).id, _dump(c.before), _dump(c.after))  # type: ignore[union-attr]
                    for c in real
                ],
            )
        return changeset_id

    def _check_current(self, dataset: str, ds: int, changes: Sequence[Change]) -> None:
        """Refuse changes planned on records that another command changed since they were read.

        Runs inside the write transaction, so what it compares with is what the changes replace.
        """
        ids = [(c.after or c.before).id for c in changes]  # type: ignore[union-attr]
        current: dict[str, Record] = {}
        for start in range(0, len(ids), _ID_CHUNK):
            chunk = ids[start : start + _ID_CHUNK]
            rows = self._tuples(
                f"SELECT {', '.join(_COLUMNS)} FROM records"
                f" WHERE dataset_id = ? AND id IN ({', '.join('?' * len(chunk))})",
                (ds, *chunk),
            )
            current.update((row[0], _row_to_record(row)) for row in rows)
        for record_id, change in zip(ids, changes, strict=True):
            if current.get(record_id) != change.before:
                raise ConflictError(
                    f"record '{record_id}' of dataset '{dataset}' was changed by another command"
                    " while this one ran; nothing was written",
                    hint="run the command again",
                )

    def _write(self, ds: int, changes: Iterable[Change], now: float) -> None:
        next_position = int(
            self.conn.execute(
                "SELECT COALESCE(MAX(position), -1) + 1 FROM records WHERE dataset_id = ?", (ds,)
            ).fetchone()[0]
        )
        deletes, updates, inserts = [], [], []
        for change in changes:
            if change.after is None:
                deletes.append((ds, change.before.id))  # type: ignore[union-attr]
            elif change.before is None:
                inserts.append((ds, next_position, now, now, *_record_values(change.after)))
                next_position += 1
            else:
                values = _record_values(change.after)
                updates.append((*values[1:], now, ds, change.after.id))
        self.conn.executemany("DELETE FROM records WHERE dataset_id = ? AND id = ?", deletes)
        assignments = ", ".join(f"{name} = ?" for name in _COLUMNS[1:])
        self.conn.executemany(
            f"UPDATE records SET {assignments}, updated_at = ? WHERE dataset_id = ? AND id = ?",
            updates,
        )
        self.conn.executemany(
            "INSERT INTO records (dataset_id, position, created_at, updated_at, "
            f"{', '.join(_COLUMNS)})"
            f" VALUES ({', '.join('?' * (4 + len(_COLUMNS)))})",
            inserts,
        )

    def update(
        self,
        dataset: str,
        records: Sequence[Record],
        *,
        kind: str,
        description: str,
        summary: dict[str, Any] | None = None,
        basis: Sequence[Record] | None = None,
    ) -> int | None:
        """Replace existing records by id with the given versions, as one changeset.

        ``basis``: the records as the caller read them before computing ``records``. A record
        that another command changed since is then refused (:class:`ConflictError`) instead of
        silently overwritten; without it, the versions replace whatever is stored now.
        """
        read = {r.id: r for r in basis} if basis is not None else {}
        with transaction(self.conn):
            current = {r.id: r for r in self.records(dataset)}
            changes = []
            for record in records:
                if record.id not in current:
                    raise BonsaiError(f"record '{record.id}' is not in dataset '{dataset}'")
                changes.append(Change(read.get(record.id, current[record.id]), record))
            return self.apply(dataset, changes, kind=kind, description=description, summary=summary)

    # -- history --------------------------------------------------------------------------------

    def history(self, dataset: str) -> list[Changeset]:
        ds = self.dataset_id(dataset)
        rows = self.conn.execute(
            "SELECT c.id, c.kind, c.description, c.summary, c.created_at, c.undone_by,"
            " (SELECT COUNT(*) FROM record_changes rc WHERE rc.changeset_id = c.id)"
            " FROM changesets c WHERE c.dataset_id = ? ORDER BY c.id",
            (ds,),
        )
        return [Changeset(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5], r[6]) for r in rows]

    def changes_of(self, changeset_id: int) -> list[Change]:
        rows = self.conn.execute(
            "SELECT before, after FROM record_changes WHERE changeset_id = ? ORDER BY id",
            (changeset_id,),
        )
        return [Change(_load(b), _load(a)) for b, a in rows]

    def undo(self, dataset: str, changeset_id: int | None = None) -> int:
        """Undo a changeset (the latest one not undone, by default). Returns the undo's id.

        A changeset can only be undone while the records it touched are still as it left them;
        otherwise the later changes must be undone first, so nothing is lost by accident.
        """
        with transaction(self.conn):  # choose, check and write against one state
            target = self._undo_target(dataset, changeset_id)
            changes = self.changes_of(target.id)
            current = {r.id: r for r in self.records(dataset)}
            for change in changes:
                record_id = (change.after or change.before).id  # type: ignore[union-attr]
                if current.get(record_id) != change.after:
                    raise BonsaiError(
                        f"record '{record_id}' changed again after change #{target.id}",
                        hint="undo the later changes first",
                    )
            reverse = [Change(c.after, c.before) for c in changes]
            undo_id = self.apply(
                dataset,
                reverse,
                kind="undo",
                description=f"undo #{target.id}: {target.description}",
                summary={"undoes": target.id},
            )
            assert undo_id is not None, "a recorded changeset always changes something"
            self.conn.execute(
                "UPDATE changesets SET undone_by = ? WHERE id = ?", (undo_id, target.id)
            )
        return undo_id

    def _undo_target(self, dataset: str, changeset_id: int | None) -> Changeset:
        candidates = [c for c in self.history(dataset) if c.undone_by is None and c.kind != "undo"]
        if not candidates:
            raise BonsaiError(f"nothing to undo in dataset '{dataset}'")
        if changeset_id is None:
            return candidates[-1]
        matches = [c for c in candidates if c.id == changeset_id]
        if not matches:
            raise BonsaiError(
                f"change #{changeset_id} is not an undoable change of dataset '{dataset}'",
                hint="`bonsai data history` lists them",
            )
        return matches[0]
