"""Check benchmark: `check_records` on 16,000 records built from the Dolly sample.

    .venv/bin/python bench/check.py [--records 16000] [--model embedded:gemma-3-270m]

Builds the records three ways, side by side in one run, because duplicates are what makes a
near-duplicate search slow:

* ``distinct``: every record different (a Dolly record plus a numbered note in its input);
* ``copies``: the 403 Dolly records repeated, ~40 exact copies of each;
* ``variants``: each Dolly prompt reworded ~40 ways (a polite phrase added), same answer: big
  near-duplicate clusters.

For each: seconds for the checks without tokens, for token counting with the student's tokenizer
(fresh counter, so nothing is cached between runs), and the findings. CPU seconds are printed
too: on a shared machine they say more than wall time. Also the tokenizer's load
time and the process's peak memory. Ends with a ``RESULT`` line. Skips (exit 0) when the shared
data is absent.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from bonsai.curate.check import check_records  # noqa: E402
from bonsai.curate.tokens import TokenCounter, _backend_tokenizer  # noqa: E402
from bonsai.records import Record, normalise_category  # noqa: E402

DOLLY = ROOT.parent / "shared" / "data" / "dolly" / "dolly-sample.jsonl"
PHRASES = [
    "Please answer.", "Answer briefly.", "Be concise.", "Thanks!", "Explain simply.",
    "Keep it short.", "In a few words.", "Quickly, please.", "One line is enough.", "Be exact.",
]  # fmt: skip


def build(kind: str, n: int, dolly: list[dict]) -> list[Record]:
    out = []
    for k in range(n):
        row = dolly[k % len(dolly)]
        copy = k // len(dolly)
        instruction, context = row["instruction"], row["context"]
        if kind == "distinct":
            context = f"{context}\n(Note {k}.)".strip()
        elif kind == "variants" and copy:
            instruction = f"{instruction} {PHRASES[copy % len(PHRASES)]}" + "!" * (
                copy // len(PHRASES)
            )
        out.append(
            Record(
                f"{kind}-{k:05d}",
                instruction,
                input=context,
                output=row["response"],
                category=normalise_category(row["category"]),
                language="en",
            )
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=16_000)
    parser.add_argument("--model", default="embedded:gemma-3-270m")
    args = parser.parse_args()
    if not DOLLY.exists():
        print(f"skipped: {DOLLY} is not there")
        return
    dolly = [json.loads(line) for line in DOLLY.read_text("utf-8").splitlines()]

    started = time.perf_counter()
    tokenizer = _backend_tokenizer(args.model)
    load_s = time.perf_counter() - started
    print(f"tokenizer {args.model}: loaded in {load_s:.2f} s")

    results = {}
    for kind in ("distinct", "copies", "variants"):
        records = build(kind, args.records, dolly)
        started = time.perf_counter()
        report = check_records(records)
        checks_s = time.perf_counter() - started
        counter = TokenCounter(tokenizer)
        started, cpu = time.perf_counter(), time.process_time()
        with_tokens = check_records(records, counter)
        total_s = time.perf_counter() - started
        cpu_s = time.process_time() - cpu
        codes = Counter(f.code for f in with_tokens.findings)
        results[kind] = (checks_s, with_tokens.seconds["tokens"], total_s)
        print(
            f"{kind:9s} {len(records):,} records: checks {checks_s:.2f} s, tokens "
            f"{with_tokens.seconds['tokens']:.2f} s, all {total_s:.2f} s wall "
            f"({cpu_s:.2f} s CPU, all threads); findings {dict(codes.most_common())}"
        )
        assert report.findings == [f for f in with_tokens.findings if f.code != "length-outlier"]

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    worst = max(total for _, _, total in results.values())
    print(
        f"RESULT records={args.records} tokenizer_load_s={load_s:.2f} "
        + " ".join(f"{k}_s={v[2]:.2f}" for k, v in results.items())
        + f" worst_s={worst:.2f} peak_mb={peak_mb:.0f}"
    )


if __name__ == "__main__":
    main()
