"""Teach-stage throughput: 200 records against a local server that takes 200 ms per answer.

Runs the whole teach stage (plan, prompts, requests through the openai client over HTTP,
validation, cache and log commits, the progress bar, the final changeset and manifest) at
concurrency 1 and at concurrency 16, side by side, each in a fresh garden. The server runs in its
own process so that it does not share the client's interpreter lock.

    .venv/bin/python bench/teach.py [--records 200] [--latency 0.2] [--concurrency 16]

Targets: speedup >= 12 (the ideal is records / ceil(records / 16), 15.4 for 200 records), and
overhead < 5 ms per record (wall time at concurrency 1 minus the server's latency, per record).
A bare openai-client loop over the same server is timed too, to show how much of the overhead is
the client and HTTP rather than BONSAI; CPU time is shown beside wall time because on a busy
machine waiting for a core inflates the wall figures of both.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import math
import tempfile
import time
from pathlib import Path

from rich.console import Console

from bonsai.garden import Garden
from bonsai.records import Record
from bonsai.store import Change, RecordStore
from bonsai.teach.args import TeachArgs
from bonsai.teach.backends import make_teacher
from bonsai.teach.progress import RichProgress
from bonsai.teach.runner import TeachSummary, teach
from bonsai.testing.server import SubprocessServer

CATEGORIES = ("open_qa", "closed_qa", "classification", "brainstorming", "creative")


def make_records(n: int, tag: str) -> list[Record]:
    """``n`` distinct records (so no run finds another's answers in a cache)."""
    return [
        Record(
            id=f"b{i:05d}",
            instruction=f"{tag} {i}: how should Mochi's water fountain be cleaned in week {i}?",
            input="The fountain is washed every Sunday; the filter is changed every four weeks."
            if i % 2
            else "",
            output=f"Wash it on Sunday of week {i} and change the filter every fourth week.",
            category=CATEGORIES[i % len(CATEGORIES)],
            language="en",
        )
        for i in range(n)
    ]


def run_stage(
    root: Path, url: str, records: int, concurrency: int
) -> tuple[float, float, TeachSummary]:
    """Wall and CPU seconds of one whole teach run in a fresh garden, and its summary."""
    garden = Garden.init(root)
    RecordStore(garden.db).apply(
        "bench",
        [Change(None, r) for r in make_records(records, f"c{concurrency}")],
        kind="import",
        description="bench records",
    )
    args = TeachArgs(
        dataset="bench", backend="openai", base_url=url, model="bench", concurrency=concurrency
    )
    # A real terminal bar, drawn into memory: its cost is part of what is measured.
    progress = RichProgress(Console(file=io.StringIO(), force_terminal=True, width=100))
    teacher = make_teacher(args, garden.config)
    started, cpu = time.perf_counter(), time.process_time()
    summary = teach(garden, args, teacher, progress=progress)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    garden.close()
    if summary.done != records or summary.failed:
        raise SystemExit(f"bench run incomplete: {summary.done} done, {summary.failed[:3]}")
    return elapsed, cpu, summary


async def bare_client(url: str, requests: int) -> tuple[float, float]:
    """Wall and CPU seconds of ``requests`` sequential calls with the plain client (no BONSAI)."""
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=url, api_key="x", max_retries=0)
    started, cpu = time.perf_counter(), time.process_time()
    for i in range(requests):
        await client.chat.completions.create(
            model="bench", messages=[{"role": "user", "content": f"You should {i}"}]
        )
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    await client.close()
    return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--bare", type=int, default=50, help="requests of the bare-client loop")
    opts = parser.parse_args()
    n, latency = opts.records, opts.latency

    with tempfile.TemporaryDirectory() as tmp, SubprocessServer(latency=latency) as server:
        asyncio.run(bare_client(server.url, 2))  # warm up: imports, first connection
        bare, bare_cpu = asyncio.run(bare_client(server.url, opts.bare))
        t1, cpu1, s1 = run_stage(Path(tmp) / "c1", server.url, n, 1)
        print(f"concurrency 1:  {t1:6.2f} s  ({s1.requests} requests)", flush=True)
        tn, _, sn = run_stage(Path(tmp) / "cN", server.url, n, opts.concurrency)
        print(f"concurrency {opts.concurrency}: {tn:6.2f} s  ({sn.requests} requests)", flush=True)
        stats = server.stats()

    client_ms = (bare / opts.bare - latency) * 1000
    overhead_ms = (t1 - n * latency) / n * 1000
    cpu_ms = cpu1 / n * 1000
    client_cpu_ms = bare_cpu / opts.bare * 1000
    ideal = n / math.ceil(n / opts.concurrency)
    speedup = t1 / tn
    print(f"server: {stats['requests']} requests, at most {stats['max_in_flight']} at once")
    print("per record, beyond the server's latency, at concurrency 1:")
    print(f"  whole teach stage      {overhead_ms:6.2f} ms wall   {cpu_ms:5.2f} ms CPU")
    print(f"  bare openai client     {client_ms:6.2f} ms wall   {client_cpu_ms:5.2f} ms CPU")
    print(f"  so BONSAI itself       {overhead_ms - client_ms:6.2f} ms wall   "
          f"{cpu_ms - client_cpu_ms:5.2f} ms CPU")  # fmt: skip
    print(f"speedup {speedup:.2f} (ideal {ideal:.2f}: {n} records in waves of {opts.concurrency})")
    print(
        f"RESULT speedup={speedup:.2f} overhead_ms_per_record={overhead_ms:.2f}"
        f" cpu_ms_per_record={cpu_ms:.2f} bonsai_ms_per_record={overhead_ms - client_ms:.2f}"
        f" client_ms_per_request={client_ms:.2f} c1_s={t1:.2f} c{opts.concurrency}_s={tn:.2f}"
        f" ideal_speedup={ideal:.2f} records={n} latency_ms={latency * 1000:.0f}"
        f" max_in_flight={stats['max_in_flight']}"
    )


if __name__ == "__main__":
    main()
