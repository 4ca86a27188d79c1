"""Splitting a dataset into train and validation records, and into shards, stratified and
deterministic.

How records are chosen:

* Records are grouped by category x language (records without one form their own group). Each
  group's records are sorted by id and shuffled with a generator seeded by the seed and the
  group's name, so the result depends only on the seed and the records, never on their order in
  the database.
* ``val``: the dataset gives ``round(N x FRACTION)`` records to validation, shared among the
  groups in proportion to their sizes (largest remainder, so small groups are not all rounded
  away). Every category with at least two records then has at least one validation record and
  keeps at least one training record; a category of one record stays in training. A group's
  validation records are the first of its shuffled order.
* ``shards`` / ``shard_size``: the training records (all records when there is no ``val``) are
  dealt round-robin, group after group in their shuffled order, into shards numbered from 0. So
  shards are equal in size to within one record and each holds its share of every group.
  ``shard_size`` N makes as many shards as needed for none to be larger than N.
* Every run sets both ``split`` and ``shard`` of every record: what a run does not ask for is
  cleared. It is one undoable change, and the settings go into the ``splits`` table.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from bonsai.db import transaction
from bonsai.errors import BonsaiError
from bonsai.records import Record
from bonsai.store import RecordStore

NONE_LABEL = "-"
"""How a missing category or language is named in group keys and tables."""


@dataclass
class SplitArgs:
    """What ``bonsai data split`` does."""

    val: float | None = None
    """Fraction of records for validation (0-1, exclusive); None: no validation split."""
    shards: int | None = None
    """Number of shards of the training records."""
    shard_size: int | None = None
    """Largest shard wanted: as many (balanced) shards as that needs."""
    seed: int = 0
    """The same seed and records always give the same split."""

    def __post_init__(self) -> None:
        if self.val is None and self.shards is None and self.shard_size is None:
            raise BonsaiError("say how to split: --val FRACTION, --shards N or --shard-size N")
        if self.shards is not None and self.shard_size is not None:
            raise BonsaiError("give --shards or --shard-size, not both")
        if self.val is not None and not 0.0 < self.val < 1.0:
            raise BonsaiError(
                f"--val must be a fraction between 0 and 1, not {self.val}", field="val"
            )
        if self.shards is not None and self.shards < 1:
            raise BonsaiError(f"--shards must be 1 or more, not {self.shards}", field="shards")
        if self.shard_size is not None and self.shard_size < 1:
            raise BonsaiError(
                f"--shard-size must be 1 or more, not {self.shard_size}", field="shard_size"
            )

    @property
    def kind(self) -> str:
        parts = (["val"] if self.val is not None else []) + (
            ["shards"] if self.shards is not None or self.shard_size is not None else []
        )
        return "+".join(parts)


@dataclass
class SplitResult:
    """What a split assigned."""

    records: list[Record]
    """Every record with its new ``split`` and ``shard``, in the input order."""
    shards: int = 0
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    """Part ('train', 'val', 'shard 0', ...) -> category -> records."""
    changeset: int | None = None
    split_id: int | None = None

    def summary(self) -> dict[str, Any]:
        return {"shards": self.shards, "counts": self.counts}


def group_key(record: Record) -> tuple[str, str]:
    return (record.category or NONE_LABEL, record.language or NONE_LABEL)


def _shuffled_groups(records: Sequence[Record], seed: int) -> dict[tuple[str, str], list[int]]:
    """Indices of each category x language group: sorted by id, then shuffled by a generator
    seeded with the seed and the group, so other groups never change a group's order."""
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, record in enumerate(records):
        groups[group_key(record)].append(i)
    out = {}
    for key in sorted(groups):
        members = sorted(groups[key], key=lambda i: records[i].id)
        random.Random(f"{seed}\x00{key[0]}\x00{key[1]}").shuffle(members)
        out[key] = members
    return out


def _val_quotas(
    groups: dict[tuple[str, str], list[int]], fraction: float
) -> dict[tuple[str, str], int]:
    """Validation records per group: round(N x fraction) shared by largest remainder; then at
    least one per category of two or more records, never a category's last training record,
    and none from a category of one record (it would be missing from training)."""
    sizes = {key: len(members) for key, members in groups.items()}
    total = sum(sizes.values())
    target = round(total * fraction)
    exact = {key: n * fraction for key, n in sizes.items()}
    quotas = {key: math.floor(x) for key, x in exact.items()}
    # Largest remainder first; ties go to the larger group, then to the group name.
    order = sorted(exact, key=lambda k: (-(exact[k] - quotas[k]), -sizes[k], k))
    for key in order[: max(0, target - sum(quotas.values()))]:
        quotas[key] += 1

    by_category: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for key in sorted(groups):
        by_category[key[0]].append(key)
    for keys in by_category.values():
        size = sum(sizes[k] for k in keys)
        if size < 2:
            for k in keys:
                quotas[k] = 0
            continue
        if sum(quotas[k] for k in keys) == 0:
            biggest = max(keys, key=lambda k: (sizes[k], k))
            quotas[biggest] = 1
        while sum(quotas[k] for k in keys) >= size:
            fullest = max(keys, key=lambda k: (quotas[k], k))
            quotas[fullest] -= 1
    return quotas


def assign_splits(records: Sequence[Record], args: SplitArgs) -> SplitResult:
    """New versions of ``records`` with ``split`` and ``shard`` set (nothing is written)."""
    groups = _shuffled_groups(records, args.seed)
    split: list[str | None] = [None] * len(records)
    shard: list[int | None] = [None] * len(records)

    training: dict[tuple[str, str], list[int]] = {}
    if args.val is not None:
        quotas = _val_quotas(groups, args.val)
        for key, members in groups.items():
            for i in members[: quotas[key]]:
                split[i] = "val"
            for i in members[quotas[key] :]:
                split[i] = "train"
            training[key] = members[quotas[key] :]
    else:
        training = groups

    n_shards = 0
    n_train = sum(len(m) for m in training.values())
    if args.shards is not None or args.shard_size is not None:
        if args.shards is not None:
            n_shards = args.shards
        else:
            assert args.shard_size is not None
            n_shards = max(1, math.ceil(n_train / args.shard_size))
        if n_train and n_shards > n_train:
            raise BonsaiError(
                f"{n_shards} shards but only {n_train:,} records to share among them",
                hint="ask for fewer shards",
            )
        dealt = 0
        for key in sorted(training):
            for i in training[key]:
                shard[i] = dealt % n_shards
                dealt += 1

    updated = [replace(r, split=s, shard=h) for r, s, h in zip(records, split, shard, strict=True)]
    return SplitResult(updated, n_shards, _counts(updated))


def part_of(record: Record) -> str:
    """The part a record is in, as tables name it: 'val', 'shard N', 'train' or '-'."""
    if record.split == "val":
        return "val"
    if record.shard is not None:
        return f"shard {record.shard}"
    return record.split or NONE_LABEL


def part_order(part: str) -> tuple[int, int]:
    """Sort key of parts: train, shard 0, shard 1, ..., val."""
    if part.startswith("shard "):
        return (1, int(part.split()[1]))
    return ({"train": 0, "val": 2}.get(part, 3), 0)


def _counts(records: Sequence[Record]) -> dict[str, dict[str, int]]:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for r in records:
        counts[part_of(r)][r.category or NONE_LABEL] += 1
    return {part: dict(c) for part, c in counts.items()}


def split_dataset(store: RecordStore, dataset: str, args: SplitArgs) -> SplitResult:
    """Split a dataset and store it: the records' new split/shard as one undoable change, and a
    row in the ``splits`` table with the settings, in one transaction."""
    records = store.records(dataset)
    if not records:
        raise BonsaiError(f"dataset '{dataset}' has no records to split")
    result = assign_splits(records, args)
    summary = {"kind": args.kind, "val": args.val, "shards": result.shards, "seed": args.seed}
    with transaction(store.conn):
        result.changeset = store.update(
            dataset,
            result.records,
            kind="split",
            description=_describe(args, result),
            summary=summary,
            basis=records,
        )
        if result.changeset is None:
            return result  # already split this way: no change, no new row
        settings = {
            **asdict(args),
            "kind": args.kind,
            "records": len(records),
            "changeset": result.changeset,
            **result.summary(),
        }
        cur = store.conn.execute(
            "INSERT INTO splits (dataset_id, kind, settings, created_at) VALUES (?, ?, ?, ?)",
            (
                store.dataset_id(dataset),
                args.kind,
                json.dumps(settings, ensure_ascii=False),
                time.time(),
            ),
        )
        assert cur.lastrowid is not None  # set by the INSERT just run
        result.split_id = cur.lastrowid
    return result


def _describe(args: SplitArgs, result: SplitResult) -> str:
    parts = []
    if args.val is not None:
        parts.append(f"val {args.val:g}")
    if result.shards:
        parts.append(f"{result.shards} shards")
    return f"split: {', '.join(parts)}, seed {args.seed}"
