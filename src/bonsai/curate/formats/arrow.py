"""Arrow-based sources: Parquet files and folders saved with ``datasets`` ``save_to_disk``.

Rows are numbered from 1 in the order the file holds them. ``pyarrow`` and ``datasets`` are
imported only when such a file is read or written.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bonsai.curate.formats import SourceRow, SourceTable
from bonsai.curate.formats.text import check_file
from bonsai.errors import BonsaiError
from bonsai.util.atomic import atomic_path


def _table_rows(records: list[dict[str, Any]]) -> list[SourceRow]:
    return [SourceRow(values, row=index) for index, values in enumerate(records, 1)]


def read_parquet(path: Path) -> SourceTable:
    import pyarrow as pa
    import pyarrow.parquet as pq

    check_file(path)
    if path.stat().st_size == 0:
        raise BonsaiError("the file is empty", file=path)
    try:
        names = pq.read_schema(path).names
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise BonsaiError(f"column '{twice[0]}' appears twice (which one is meant?)", file=path)
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BonsaiError(f"not a readable Parquet file: {reason}", file=path) from None
    if table.num_rows == 0:
        raise BonsaiError("the Parquet file has no rows", file=path)
    columns = list(table.column_names)
    rows = _table_rows(table.to_pylist())
    json_columns: frozenset[str] = frozenset()
    with contextlib.suppress(ValueError, TypeError):  # metadata not written by BONSAI
        names = json.loads((table.schema.metadata or {}).get(JSON_COLUMNS_KEY, b"[]"))
        json_columns = frozenset(str(name) for name in names)
    for row in rows:
        for name in json_columns & row.values.keys():
            if isinstance(row.values[name], str):
                with contextlib.suppress(ValueError):
                    row.values[name] = json.loads(row.values[name])
    return SourceTable(rows, columns=columns, json_columns=json_columns)


HF_MARKERS = ("dataset_dict.json", "state.json", "dataset_info.json")


def is_hf_folder(path: Path) -> bool:
    return path.is_dir() and any((path / marker).is_file() for marker in HF_MARKERS)


def read_hf(path: Path, *, split: str | None = None) -> SourceTable:
    """A ``Dataset`` folder, or one split of a ``DatasetDict`` folder ('train' unless told)."""
    if not path.exists():
        raise BonsaiError("no such file or folder", file=path)
    if not is_hf_folder(path):
        raise BonsaiError(
            "not a Hugging Face dataset folder (no dataset_dict.json or state.json)",
            file=path,
            hint="save one with Dataset.save_to_disk(PATH), or name a file",
        )
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as exc:  # datasets raises many kinds; all mean "cannot read this folder"
        raise BonsaiError(f"cannot load the Hugging Face dataset: {exc}", file=path) from None
    notes: list[str] = []
    if isinstance(loaded, datasets.DatasetDict):
        names = list(loaded.keys())
        chosen = split or "train"
        if chosen not in loaded:
            raise BonsaiError(
                f"the dataset has no split '{chosen}' (it has: {', '.join(names)})",
                file=path,
                hint="choose one with --split NAME",
            )
        if len(names) > 1:
            notes.append(f"took split '{chosen}' of {', '.join(names)} (--split chooses another)")
        loaded = loaded[chosen]
    elif split is not None:
        notes.append(f"the folder holds one dataset, not splits: --split {split} was ignored")
    if len(loaded) == 0:
        raise BonsaiError("the dataset has no rows", file=path)
    columns = list(loaded.column_names)
    return SourceTable(_table_rows(loaded.to_list()), columns=columns, notes=notes)


JSON_COLUMNS_KEY = b"bonsai.json_columns"
"""Parquet schema metadata: columns whose values a BONSAI export stored as JSON text."""


def _one_type(values: list[Any]) -> bool:
    """All values (None aside) of one plain type that an Arrow column holds exactly."""
    kinds = {type(v) for v in values if v is not None}
    return len(kinds) <= 1 and kinds <= {str, bool, int, float}


def write_parquet(rows: Sequence[dict[str, Any]], columns: list[str], out: Path) -> None:
    """Columns of one plain type stay typed; others are stored as JSON text, named in the
    schema metadata so that an import decodes them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays = []
    json_columns = []
    for name in columns:
        values = [row.get(name) for row in rows]
        if _one_type(values):
            array = pa.array(values)
            if pa.types.is_null(array.type):
                array = pa.array(values, type=pa.string())
        else:
            json_columns.append(name)
            array = pa.array(
                [None if v is None else json.dumps(v, ensure_ascii=False) for v in values],
                type=pa.string(),
            )
        arrays.append(array)
    table = pa.table(arrays, names=columns)
    table = table.replace_schema_metadata({JSON_COLUMNS_KEY: json.dumps(json_columns).encode()})
    with atomic_path(out) as tmp:
        pq.write_table(table, tmp)
