"""Exporting a dataset (or one split or shard of it) to a file, atomically, in UTF-8.

Every format carries the record ``id``, so an edited export can be imported again without losing
or duplicating a record. Which columns each format holds is described in
:mod:`bonsai.curate.formats.schemas`; the Excel workbook in :mod:`bonsai.curate.formats.excel`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bonsai import __version__
from bonsai.curate.formats import EXPORT_FORMATS, EXPORT_SUFFIXES
from bonsai.curate.formats.schemas import (
    FLAT_COLUMNS,
    dolly_row,
    extra_columns,
    flat_row,
    sharegpt_row,
)
from bonsai.errors import BonsaiError
from bonsai.garden import Garden, check_output_path
from bonsai.records import Record
from bonsai.store import RecordStore

_FROM_SUFFIX = {
    ".json": "alpaca",
    ".jsonl": "jsonl",
    ".csv": "csv",
    ".xlsx": "xlsx",
    ".parquet": "parquet",
}


@dataclass
class ExportArgs:
    """What `bonsai data export` does."""

    dataset: str
    fmt: str | None = None
    """One of EXPORT_FORMATS; None: from the suffix of ``out``."""
    out: Path | None = None
    """File to write; None: ``exports/<dataset>[-<split>][-shard<N>].<suffix>`` in the garden."""
    split: str | None = None
    """Only records of this split ('train' or 'val')."""
    shard: int | None = None
    """Only records of this shard."""

    def __post_init__(self) -> None:
        if self.out is not None:
            self.out = Path(self.out)
        if self.fmt is None:
            if self.out is None or self.out.suffix.lower() not in _FROM_SUFFIX:
                raise BonsaiError(
                    "say which format to write",
                    hint=f"--format, one of: {', '.join(EXPORT_FORMATS)}"
                    " (or an --out file ending in .json, .jsonl, .csv, .xlsx or .parquet)",
                )
            self.fmt = _FROM_SUFFIX[self.out.suffix.lower()]
        if self.fmt not in EXPORT_FORMATS:
            raise BonsaiError(
                f"unknown export format '{self.fmt}'",
                hint=f"choose one of: {', '.join(EXPORT_FORMATS)}",
            )
        if self.split not in (None, "train", "val"):
            raise BonsaiError(f"unknown split '{self.split}'", hint="choose train or val")
        if self.shard is not None and self.shard < 0:
            raise BonsaiError("--shard must be 0 or more")

    def default_out(self, garden: Garden) -> Path:
        name = re.sub(r"[^\w.-]+", "_", self.dataset)
        if self.split:
            name += f"-{self.split}"
        if self.shard is not None:
            name += f"-shard{self.shard}"
        return garden.exports_dir / f"{name}{EXPORT_SUFFIXES[self.fmt or 'jsonl']}"


def select_records(
    garden: Garden, dataset: str, *, split: str | None = None, shard: int | None = None
) -> list[Record]:
    """The records an export writes; an empty selection is an error (it could not re-import)."""
    records = RecordStore(garden.db).records(dataset, split=split, shard=shard)
    if not records:
        what = f"dataset '{dataset}'"
        if split:
            what += f", split '{split}'"
        if shard is not None:
            what += f", shard {shard}"
        hint = "`bonsai data split` assigns splits and shards" if split or shard else None
        raise BonsaiError(f"no records to export in {what}", hint=hint)
    return records


def write_records(
    records: Sequence[Record],
    fmt: str,
    out: str | Path,
    *,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write ``records`` to ``out`` in ``fmt``, atomically; returns ``out``."""
    out = Path(out)
    if fmt not in EXPORT_FORMATS:
        raise BonsaiError(
            f"unknown export format '{fmt}'", hint=f"choose one of: {', '.join(EXPORT_FORMATS)}"
        )
    columns = [*FLAT_COLUMNS, *extra_columns(records)]  # also refuses extra keys that clash
    if fmt in ("alpaca", "jsonl", "dolly", "sharegpt"):
        from bonsai.curate.formats.jsonfmt import write_json

        build = {"dolly": dolly_row, "sharegpt": sharegpt_row}.get(fmt, flat_row)
        # The suffix decides where it says; otherwise Alpaca and ShareGPT files are JSON arrays
        # by custom, JSONL and Dolly files one object per line.
        suffix = out.suffix.lower()
        lines = suffix in (".jsonl", ".ndjson") or (suffix != ".json" and fmt in ("jsonl", "dolly"))
        write_json((build(r) for r in records), out, lines=lines)
        return out
    rows = [flat_row(r) for r in records]
    if fmt == "csv":
        from bonsai.curate.formats.tabular import write_csv

        write_csv(rows, columns, out)
    elif fmt == "xlsx":
        from bonsai.curate.formats.excel_write import write_xlsx

        write_xlsx(rows, columns, out, meta=meta)
    else:
        from bonsai.curate.formats.arrow import write_parquet

        write_parquet(rows, columns, out)
    return out


def run_export(garden: Garden, args: ExportArgs) -> tuple[Path, int]:
    """Write the export; returns the file and how many records it holds."""
    out = args.out or args.default_out(garden)
    check_output_path(out)
    records = select_records(garden, args.dataset, split=args.split, shard=args.shard)
    meta = {"dataset": args.dataset, "split": args.split, "shard": args.shard}
    meta["bonsai_version"] = __version__
    try:
        write_records(records, args.fmt or "jsonl", out, meta=meta)
    except OSError as exc:
        raise BonsaiError(f"cannot write the export: {exc.strerror or exc}", file=out) from None
    return out, len(records)


def export_dataset(
    garden: Garden,
    dataset: str,
    fmt: str | None = None,
    out: str | Path | None = None,
    split: str | None = None,
    shard: int | None = None,
) -> Path:
    """Export ``dataset`` (see :class:`ExportArgs`); returns the file written."""
    args = ExportArgs(dataset, fmt, Path(out) if out is not None else None, split, shard)
    return run_export(garden, args)[0]
