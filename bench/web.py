"""Web benchmark: ``bonsai ui`` on a 16,000-record dataset, through its real HTTP server.

    .venv/bin/python bench/web.py [--records 16000] [--model tiny|embedded] [--steps 200]

Measures what a person waits for: the Records page (first page, a later page, a filter), a
search, the chat's first token once the model is loaded (streamed over the same API the chat
page uses), and whether the pages stay responsive while a training job runs in the worker
process. Targets: records page < 300 ms, search < 500 ms, first token < 1.5 s, pages during
training < 300 ms. ``--model tiny`` (the default) answers with a 2-layer model built in-process:
it measures the UI's own overhead; ``--model embedded`` uses the embedded student (Gemma 3 270M).
Prints ``RESULT`` lines last.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from bonsai.garden import Garden  # noqa: E402
from bonsai.records import CATEGORIES, Record  # noqa: E402
from bonsai.store import Change, RecordStore  # noqa: E402

EN = [
    "How often should I brush {n}?", "What does {n} like to eat in the morning?",
    "Is a lily dangerous for {n}?", "List games to play with {n} on a rainy day.",
    "Translate into Japanese: {n} sleeps on the sofa.", "Write a short poem about {n}.",
    "What should I ask the vet about {n}'s teeth?",
]  # fmt: skip
JA = [
    "{n}のブラッシングはどのくらいの頻度ですか？", "{n}は朝ごはんに何を食べますか？",
    "ユリは{n}にとって危険ですか？", "雨の日に{n}と遊ぶゲームを挙げてください。",
    "英語に訳してください：{n}はソファで寝ます。", "{n}についての短い詩を書いてください。",
    "{n}の歯について獣医に何を聞くべきですか？",
]  # fmt: skip
NAMES = ["Mochi", "Tama", "Kuro", "Sora", "Hana", "Momo", "Leo", "Luna"]


def build_records(n: int) -> list[Record]:
    out = []
    for i in range(n):
        japanese = i % 3 == 0
        template = (JA if japanese else EN)[i % 7]
        name = NAMES[i % len(NAMES)] + str(i // 56)
        out.append(
            Record(
                id=f"b{i:05d}",
                instruction=template.format(n=name),
                output=("はい、" if japanese else "Yes: ")
                + f"answer number {i} about {name}. " * 3,
                category=CATEGORIES[i % 7],
                language="ja" if japanese else "en",
                reasoning="You should read the question and answer from the notes.",
                split="val" if i % 10 == 0 else "train",
            )
        )
    return out


def timed(client: httpx.Client, url: str, repeat: int = 7) -> tuple[float, float]:
    """(median, worst) milliseconds of GET ``url`` (one warm-up call first)."""
    client.get(url).raise_for_status()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        client.get(url).raise_for_status()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), max(times)


def first_token_ms(client: httpx.Client, base: str, question: str) -> float:
    body = {"model": "bonsai", "stream": True, "messages": [{"role": "user", "content": question}],
            "max_tokens": 16}  # fmt: skip
    started = time.perf_counter()
    with client.stream("POST", f"{base}/v1/chat/completions", json=body, timeout=600) as r:
        r.raise_for_status()
        lines = r.iter_lines()
        for line in lines:
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            delta = json.loads(line[6:])["choices"]
            if delta and (
                delta[0]["delta"].get("content") or delta[0]["delta"].get("reasoning_content")
            ):
                elapsed = (time.perf_counter() - started) * 1000
                for _ in lines:  # let it finish (and be logged) before the next
                    pass
                return elapsed
    return float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=16_000)
    parser.add_argument("--model", choices=("tiny", "embedded"), default="tiny")
    parser.add_argument("--steps", type=int, default=200, help="steps of the training job")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bonsai-web-bench-"))
    garden = Garden.init(tmp / "garden")
    if args.model == "tiny":
        from bonsai.student.tiny import build_tiny_model

        model = build_tiny_model(tmp / "tiny")
        garden.config.student.base_model = str(model)
        garden.config.save(garden.config_path)
    started = time.perf_counter()
    RecordStore(garden.db).apply(
        "big", [Change(None, r) for r in build_records(args.records)], kind="import",
        description="bench records",
    )  # fmt: skip
    print(f"{args.records:,} records stored in {time.perf_counter() - started:.1f} s")
    garden.close()

    env = dict(os.environ, BONSAI_EMBED_MODEL="hashing", PYTHONPATH=str(ROOT / "src"))
    log = tmp / "ui.log"
    server = subprocess.Popen(
        [sys.executable, "-c", "from bonsai.cli import main; main()", "ui", "--garden",
         str(garden.root), "--port", "0", "--precision", "bf16"],
        env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        base = ""
        while time.monotonic() < deadline and not base:
            found = re.search(r"at (http://\S+?)/[\s)]", log.read_text())
            base = found.group(1) if found else ""
            time.sleep(0.2)
        if not base:
            print(log.read_text())
            return 1
        client = httpx.Client(timeout=60)
        page_ms, page_max = timed(client, f"{base}/records?dataset=big")
        later_ms, _ = timed(client, f"{base}/records?dataset=big&page=250")
        filter_ms, _ = timed(client, f"{base}/records?dataset=big&category=translation&language=ja")
        search_ms, search_max = timed(client, f"{base}/records?dataset=big&q=Tama12")
        search_ja_ms, _ = timed(client, f"{base}/records?dataset=big&q=ブラッシング")
        garden_ms, _ = timed(client, f"{base}/")
        print(
            f"records page {page_ms:.0f} ms (worst {page_max:.0f}), page 250 {later_ms:.0f} ms, "
            f"filter {filter_ms:.0f} ms, search {search_ms:.0f} ms (worst {search_max:.0f}), "
            f"Japanese search {search_ja_ms:.0f} ms, garden page {garden_ms:.0f} ms"
        )

        started = time.perf_counter()
        first_token_ms(client, base, "How old is Mochi?")  # loads the model
        load_s = time.perf_counter() - started
        tokens = [first_token_ms(client, base, q) for q in
                  ("How old is Mochi?", "もちは何歳ですか？", "What does Tama eat?")]  # fmt: skip
        token_ms = statistics.median(tokens)
        shown = ", ".join(f"{t:.0f}" for t in tokens)
        print(
            f"first answer {load_s:.1f} s after the server started (loading); "
            f"then first token {shown} ms"
        )

        html = client.get(f"{base}/train").text
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)
        client.post(f"{base}/train", data={"dataset": "big", "max_steps": str(args.steps)},
                    headers={"X-CSRF-Token": csrf}).raise_for_status()  # fmt: skip
        job = None
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            job = client.get(f"{base}/jobs/1.json").json()
            if job["state"] == "running" and (job["progress"] or {}).get("done"):
                break
            if job["state"] in ("failed", "finished", "interrupted"):
                break
            time.sleep(0.5)
        training = job and job["state"] == "running"
        busy_ms, busy_max = timed(client, f"{base}/records?dataset=big&q=Tama12", repeat=9)
        pill_ms, _ = timed(client, f"{base}/jobs/pill", repeat=9)
        still = client.get(f"{base}/jobs/1.json").json()
        print(
            f"while training (job {still['state']}, step {still['progress'].get('done')}): "
            f"search {busy_ms:.0f} ms (worst {busy_max:.0f}), jobs pill {pill_ms:.0f} ms"
        )
        client.post(f"{base}/jobs/1/stop", headers={"X-CSRF-Token": csrf})

        print(
            f"RESULT records={args.records} records_page_ms={page_ms:.0f} "
            f"records_page_250_ms={later_ms:.0f} filter_ms={filter_ms:.0f} "
            f"search_ms={search_ms:.0f} search_ja_ms={search_ja_ms:.0f}"
        )
        print(
            f"RESULT model={args.model} first_answer_after_start_s={load_s:.1f} "
            f"first_token_ms={token_ms:.0f}"
        )
        print(
            f"RESULT training_job_running={bool(training)} search_while_training_ms={busy_ms:.0f}"
            f" worst_while_training_ms={busy_max:.0f}"
        )
        ok = page_ms < 300 and search_ms < 500 and token_ms < 1500 and busy_ms < 300
        print(f"RESULT targets_met={ok}")
        return 0
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    sys.exit(main())
