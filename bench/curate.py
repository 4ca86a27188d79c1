"""Curate benchmark: import + annotate + check + export of 16,000 records, in one process.

    .venv/bin/python bench/curate.py [--records 16000] [--fast]

Builds 16k records from the Dolly sample (each varied so that ids and texts differ, with some
exact copies and reworded variants so that duplicate search has real work), writes them as JSONL,
then runs the curate stage's library functions on a fresh garden, as the CLI does:
``import_file`` → ``annotate_dataset`` → ``check_records`` (token lengths with the student's
tokenizer) → ``export_dataset`` to xlsx. Prints seconds per step and the process's peak memory.
CPU seconds (all threads of the process) are printed beside wall seconds: on a shared machine
they say more than wall time. Targets: under 30 s in all, under 1 GB. Skips (exit 0) when the
shared data is absent.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOLLY = ROOT.parent / "shared" / "data" / "dolly" / "dolly-sample.jsonl"
PHRASES = ["", " Please answer briefly.", " Be concise.", " Explain simply.", " Thanks!"]


def build_records(n: int) -> list[dict]:
    dolly = [json.loads(line) for line in DOLLY.read_text(encoding="utf-8").splitlines()]
    rows = []
    for k in range(n):
        row = dict(dolly[k % len(dolly)])
        copy = k // len(dolly)
        if copy % 10 == 1:
            pass  # an exact copy of the original: the check must find it
        else:
            row["instruction"] += PHRASES[copy % len(PHRASES)]
            row["response"] += f" (note {copy})"
        rows.append(row)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=16_000)
    parser.add_argument("--fast", action="store_true", help="low-accuracy language detection")
    parser.add_argument("--model", default="embedded:gemma-3-270m", help="tokenizer for lengths")
    args = parser.parse_args()
    if not DOLLY.exists():
        print(f"skipped: shared test data not present ({DOLLY})")
        return 0

    from bonsai.curate.annotate import AnnotateArgs, annotate_dataset
    from bonsai.curate.check import check_records
    from bonsai.curate.exporter import export_dataset
    from bonsai.curate.importer import import_file
    from bonsai.curate.tokens import token_counter
    from bonsai.garden import Garden
    from bonsai.store import RecordStore

    # The tokenizer is converted once per machine; load it before the clock starts so the
    # figure is the curate work, and report its load time separately.
    started = time.perf_counter()
    counter = token_counter(args.model)
    tokenizer_s = time.perf_counter() - started

    seconds: dict[str, float] = {}
    cpu: dict[str, float] = {}

    @contextmanager
    def timed(step: str) -> Iterator[None]:
        started, cpu_started = time.perf_counter(), time.process_time()
        yield
        seconds[step] = time.perf_counter() - started
        cpu[step] = time.process_time() - cpu_started

    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "records.jsonl"
        with source.open("w", encoding="utf-8") as out:
            for row in build_records(args.records):
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
        garden = Garden.init(Path(tmp) / "garden")
        store = RecordStore(garden.db)
        with timed("total"):
            with timed("import"):
                report = import_file(garden, source, "bench")
            with timed("annotate"):
                annotate_dataset(store, "bench", AnnotateArgs(fast=args.fast))
            with timed("check"):
                checked = check_records(store.records("bench"), counter, dataset="bench")
            with timed("export"):
                export_dataset(garden, "bench", "xlsx", Path(tmp) / "bench.xlsx")
        garden.close()

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"records: {args.records}  imported: {report.counts()}")
    print(f"check findings: {checked.summary()}")
    print(f"tokenizer load (not counted): {tokenizer_s:.2f} s")
    for step in ("import", "annotate", "check", "export", "total"):
        print(f"{step:>9}: {seconds[step]:6.2f} s wall  {cpu[step]:6.2f} s CPU")
    print(
        f"RESULT seconds={seconds['total']:.2f} cpu_seconds={cpu['total']:.2f}"
        f" peak_mb={peak_mb:.0f} records={args.records}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
