"""How long a keeper waits for ``bonsai chat``: from launching it to its prompt, and to an answer.

    .venv/bin/python bench/chat_ready.py [--garden DIR] [--rounds 2]

Each round launches the interactive chat in a pseudo-terminal, as a person does, twice: once
with the cached int4 output layer removed (``cold``: the first start after converting the model
or changing it) and once with it in place (``warm``: every start after that). For each launch:

- ``ready``: seconds until the ``you>`` prompt appears and a question can be typed;
- ``answered``: seconds until a question typed the moment the prompt appeared has its (one-token)
  answer: the whole load (weights, tokenizer, int4 head), then the prompt's processing.

The chat loads the model while the prompt waits, so ``ready`` is what the keeper sees first and
``answered`` bounds what is left when they ask at once. Without ``--garden`` a new garden on
the embedded model (answering with the base model) is used; pass a garden to include its run's
adapter and notes. The embedded model is converted first if it never was (not timed).

Prints ``RESULT chat_ready_s=… chat_ready_cold_s=… answered_s=… answered_cold_s=…`` last
(medians over the rounds).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import pexpect  # noqa: E402

from bonsai.garden import Garden  # noqa: E402
from bonsai.generate.loading import choose_run, prepared_cache_dir  # noqa: E402
from bonsai.student import ensure_embedded_model  # noqa: E402

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")
PROMPT = "you> "
QUESTION = "What does a cat eat?"


def wait_for(child: pexpect.spawn, text: str, timeout: float = 300) -> None:
    seen = ""
    deadline = time.monotonic() + timeout
    while text not in ANSI.sub("", seen):
        if time.monotonic() > deadline:
            raise SystemExit(f"{text!r} never appeared; the chat showed:\n{ANSI.sub('', seen)}")
        try:
            seen += child.read_nonblocking(4096, timeout=1)
        except pexpect.TIMEOUT:
            continue
        except pexpect.EOF:
            raise SystemExit(f"the chat ended early:\n{ANSI.sub('', seen)}") from None


def launch(garden: Path) -> tuple[float, float]:
    """(seconds to the prompt, seconds to the answer of a question asked at once)."""
    env = {**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(ROOT / "src")}
    args = ["-c", "from bonsai.cli import main; main()", "chat", "--garden", str(garden)]
    args += ["--max-tokens", "1", "--deterministic", "--no-rag"]
    started = time.perf_counter()
    child = pexpect.spawn(sys.executable, args, env=env, encoding="utf-8", dimensions=(40, 160))
    wait_for(child, PROMPT)
    ready = time.perf_counter() - started
    child.sendline(QUESTION)
    wait_for(child, QUESTION)
    wait_for(child, PROMPT)
    answered = time.perf_counter() - started
    child.sendline("/quit")
    child.expect(pexpect.EOF, timeout=60)
    child.close()
    return ready, answered


def clear_head_cache(garden: Path) -> int:
    choice = choose_run(Garden.open(garden))
    folder = prepared_cache_dir(choice.base_model)
    found = list(folder.glob("head-int4-*.safetensors")) if folder.is_dir() else []
    for path in found:
        path.unlink()
    return len(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--garden", type=Path, help="A garden to chat in (default: a new one).")
    parser.add_argument("--rounds", type=int, default=2, help="Cold and warm launches each.")
    args = parser.parse_args()

    print("Preparing the embedded model (converted once, not timed)…", flush=True)
    ensure_embedded_model()
    made = None
    garden = args.garden
    if garden is None:
        made = Path(tempfile.mkdtemp(prefix="bonsai-chat-ready-"))
        garden = Garden.init(made / "garden").root
    times: dict[str, list[tuple[float, float]]] = {"cold": [], "warm": []}
    try:
        for round_ in range(1, args.rounds + 1):
            for kind in ("cold", "warm"):
                if kind == "cold":
                    clear_head_cache(garden)
                ready, answered = launch(garden)
                times[kind].append((ready, answered))
                print(
                    f"round {round_} {kind}: prompt after {ready:5.2f} s, "
                    f"answer after {answered:5.2f} s",
                    flush=True,
                )
    finally:
        if made is not None:
            shutil.rmtree(made, ignore_errors=True)

    def median(kind: str, i: int) -> float:
        return statistics.median(pair[i] for pair in times[kind])

    print(f"{'':6} {'prompt (s)':>11} {'answered (s)':>13}")
    for kind in ("cold", "warm"):
        print(f"{kind:6} {median(kind, 0):11.2f} {median(kind, 1):13.2f}")
    print(
        f"RESULT chat_ready_s={median('warm', 0):.2f} chat_ready_cold_s={median('cold', 0):.2f} "
        f"answered_s={median('warm', 1):.2f} answered_cold_s={median('cold', 1):.2f}"
    )


if __name__ == "__main__":
    main()
