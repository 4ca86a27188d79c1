"""Nursery stock: the starter adapter a keeper's first round grows from.

A 270M *base* model does not learn to follow instructions from a few hundred personal records.
So BONSAI ships an adapter for the embedded student that already follows instructions in the
seven categories, in Japanese and English, and reads the notes chat gives it — the way a bonsai
starts from nursery stock. ``bonsai train`` continues it by default (``--from base`` starts
from the bare model); :mod:`bonsai.nursery.build` grows it again from the shared open data.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bonsai.errors import BonsaiError
from bonsai.garden import Garden

if TYPE_CHECKING:
    from bonsai.runs import Run

STOCK_DIR = Path(__file__).parent / "stock"
"""The shipped stock: ``adapter/``, ``manifest.json``, ``metrics.jsonl``, curves, ``NOTICE.md``."""
STOCK_RUN_PREFIX = "nursery-"

NOTICE = """\
# Nursery stock: data and licence

This adapter was trained by BONSAI's `bonsai nursery build` from:

- **databricks-dolly-15k**, in Japanese (all 15,015 records are read; the build trains on the
  shards its manifest lists) and the English original (a sample). Copyright (2023) Databricks,
  Inc.; parts of the records come from Wikipedia (copyright Wikipedia editors and contributors).
  Licensed under **CC BY-SA 3.0** (Creative Commons Attribution-ShareAlike 3.0 Unported,
  https://creativecommons.org/licenses/by-sa/3.0/). As a work trained on that data, this adapter
  is shared under the same licence.
- English–Japanese sentence pairs from **small_parallel_enja** (odashi/small_parallel_enja), taken
  from the **Tanaka Corpus** (released into the public domain by its compiler; the Tatoeba
  project's edition is CC BY 2.0 FR), made into translation records both ways.
- Question-to-question, classification and translation-request records written for BONSAI
  (`bonsai/nursery/data`, Apache-2.0).

`rehearsal.jsonl` holds 280 of the records themselves (for `bonsai train --rehearsal on`): the
Dolly records among them are shared under CC BY-SA 3.0, with the attribution above.

`manifest.json` records the exact settings, the records per shard and category, and the
held-out loss after each shard.
"""


def stock_manifest(stock_dir: Path | None = None) -> dict[str, Any] | None:
    """The shipped stock's manifest, or None when no stock is shipped."""
    stock_dir = stock_dir or STOCK_DIR
    path = stock_dir / "manifest.json"
    if not (stock_dir / "adapter" / "adapter_config.json").is_file() or not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def stock_run_id(manifest: dict[str, Any]) -> str:
    return STOCK_RUN_PREFIX + str(manifest["id"])[:15]


def stock_ancestor(garden: Garden, run: Run | None) -> Run | None:
    """The nursery stock ``run`` grows from, directly or through earlier rounds (``run`` itself
    when it is the stock), or None when its line starts from the base model."""
    from bonsai.layouts import BASE
    from bonsai.runs import load_run

    while run is not None and not run.id.startswith(STOCK_RUN_PREFIX):
        above = run.manifest.parent
        run = load_run(garden, above) if above and above != BASE else None
    return run


def stock_fits(base_model: str, stock_dir: Path | None = None) -> bool:
    """Whether the shipped stock was grown on ``base_model``."""
    manifest = stock_manifest(stock_dir)
    return manifest is not None and manifest["base_model"]["name"] == base_model


def install_stock(garden: Garden, stock_dir: Path | None = None) -> str:
    """Put the stock into the garden as a finished run (once) and return its run id."""
    stock_dir = stock_dir or STOCK_DIR
    from bonsai import runs
    from bonsai.util.atomic import atomic_dir

    manifest = stock_manifest(stock_dir)
    if manifest is None:
        raise BonsaiError("no nursery stock is shipped with this installation", hint="--from base")
    run_id = stock_run_id(manifest)
    folder = garden.runs_dir / run_id
    if not (folder / runs.MANIFEST).is_file():
        garden.runs_dir.mkdir(exist_ok=True)
        with atomic_dir(folder) as tmp:
            shutil.copytree(stock_dir, tmp, dirs_exist_ok=True)
            manifest = {**manifest, "id": run_id, "dataset": "nursery", "status": "finished"}
            (tmp / runs.MANIFEST).write_text(
                json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
            )
    run = runs.load_run(garden, run_id)
    runs.save_manifest(garden, run)  # index it
    return run_id
