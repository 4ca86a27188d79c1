"""Does the grown student answer its keeper better than the base model? One garden, from nothing.

    .venv/bin/python bench/garden_quality.py GARDEN QUESTIONS [--quick] [--out FILE] [--keep DIR]
        [--train-arg ARG]... [--models tuned,base] [--reuse DIR]

GARDEN is a folder with the records (``records.jsonl``, or the one ``*.jsonl`` file in it) and a
``notes/`` folder, or a records file whose folder has ``notes/``. QUESTIONS is a held-out question
file (bench/gardens/README.md). For example:

    .venv/bin/python bench/garden_quality.py bench/gardens/sourdough \
        bench/gardens/sourdough/questions.jsonl
    .venv/bin/python bench/garden_quality.py src/bonsai/sample \
        bench/gardens/cat-care-questions.jsonl --quick

What it does, in one run, with the real ``bonsai`` command and the defaults a new keeper gets:

1. ``bonsai init`` in a temp folder, ``data import``, ``data annotate``, ``teach`` (the template
   teacher, offline), ``notes add`` (the notes and the records), ``train``.
   ``--quick`` trains 24 steps of 640 tokens, as ``bonsai demo --quick`` does, and lets an answer
   be shorter; otherwise every setting is the default.
2. ``bonsai serve`` for the tuned run, then for the base model; every question is asked through
   the official ``openai`` client, RAG on, temperature 0. Questions of the question_to_question
   category are asked in q2q mode, as a keeper would switch to it in chat.
3. Scores each reply (bench/quality_scoring.py) and prints, for tuned and base,

       RESULT facts=… closed=… labels=… translation_lang=… chrf=… q2q=… loops=… model=…

   and writes every question, reply and score to a JSON file (``--out``). The table also shows
   ``echoes``: replies that copy the retrieved-notes block ("[1] notes/… > …") rather than
   answer; a fact found in one of those was read out, not answered. ``facts_not_copied`` and
   ``closed_not_copied`` count the right replies that neither copy the notes block nor read the
   text given with the question back (half its character 5-grams or more): the answers the model
   picked out itself. And ``note_retrieved``: for questions whose ``source`` is a note, how
   often retrieval put that note in the prompt (a miss there is retrieval's, not the model's);
   ``answer_in_prompt``: for facts and closed questions, how often an accepted answer was in
   the prompt at all (from the garden's chat log); ``category_guessed``: how often chat took
   the question for its category.
4. Asks the first eight questions once more with streaming and prints when the first text of
   each answer arrived (median and most, seconds from sending the question).

``--train-arg ARG`` adds ARG to ``bonsai train`` (to compare a setting: run once with and once
without, e.g. ``--train-arg=--reading=off``); ``--models tuned`` asks only the tuned model (the
base model's answers do not depend on training); ``--models tuned,stock,base`` asks the nursery
stock as well, the run the keeper's round started from, to show what the round itself changed.

``--reuse DIR`` asks a garden an earlier run grew and kept (``--keep DIR``) again, without growing
anything: for a change to chat (prompt building, retrieval, generation) that needs no training.

``--rescore FILE`` scores the replies of an earlier run's JSON again (after a change to the
questions or the scoring) without growing or asking anything.

Progress goes to stderr; the table and the RESULT lines to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality_scoring import (
    DIAGNOSTICS,
    RESULT_FIELDS,
    Question,
    load_questions,
    result_line,
    score_reply,
    summarise,
)

DATASET = "garden"
QUICK_TRAIN = ["--max-steps", "24", "--batch-tokens", "640"]
"""The quick demo's training budget (bonsai.demo.QUICK)."""
MAX_TOKENS = {"quick": 128, "full": 256}
SERVER_START_S = 900


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def bonsai_command() -> list[str]:
    """The ``bonsai`` command of this Python environment."""
    exe = Path(sys.executable).parent / "bonsai"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("bonsai")
    if found:
        return [found]
    raise SystemExit("the `bonsai` command is not installed in this environment")


def find_garden(path: Path) -> tuple[Path, Path | None]:
    """(records file, notes folder or None) of a garden folder or a records file."""
    if path.is_file():
        notes = path.parent / "notes"
        return path, notes if notes.is_dir() else None
    if not path.is_dir():
        raise SystemExit(f"{path}: no such folder or file")
    records = path / "records.jsonl"
    if not records.exists():
        candidates = sorted(p for p in path.glob("*.jsonl") if "question" not in p.name)
        if len(candidates) != 1:
            raise SystemExit(f"{path}: expected records.jsonl or exactly one *.jsonl file")
        records = candidates[0]
    notes = path / "notes"
    return records, notes if notes.is_dir() else None


def run_cli(args: list[str], garden: Path, timings: dict[str, float]) -> None:
    """Run one ``bonsai`` command; its output goes to stderr, a failure stops the bench."""
    name = " ".join(args[:2]) if args[0] in ("data", "notes") else args[0]
    log(f"bonsai {' '.join(args)}")
    start = time.monotonic()
    done = subprocess.run(
        [*bonsai_command(), *args, "--garden", str(garden)],
        stdout=sys.stderr,
        stderr=sys.stderr,
        env=_env(),
        check=False,
    )
    timings[name] = round(time.monotonic() - start, 1)
    if done.returncode != 0:
        raise SystemExit(f"`bonsai {' '.join(args)}` failed with status {done.returncode}")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("COLUMNS", "120")
    env.pop("BONSAI_GARDEN", None)
    return env


def grow(
    records: Path, notes: Path | None, garden: Path, quick: bool, train_args: list[str]
) -> dict[str, float]:
    """Init, import, annotate, teach, notes, train: the README's steps, with defaults (and
    ``train_args``, when given, added to ``bonsai train``)."""
    timings: dict[str, float] = {}
    log(f"bonsai init {garden}")
    subprocess.run([*bonsai_command(), "init", str(garden)], check=True, stdout=sys.stderr)
    run_cli(["data", "import", str(records), "--dataset", DATASET], garden, timings)
    run_cli(["data", "annotate", "--dataset", DATASET], garden, timings)
    run_cli(["teach", "--dataset", DATASET, "--backend", "template"], garden, timings)
    run_cli(
        ["notes", "add", *([str(notes)] if notes else []), "--dataset", DATASET], garden, timings
    )
    quick_args = QUICK_TRAIN if quick else []
    run_cli(["train", "--dataset", DATASET, *quick_args, *train_args], garden, timings)
    return timings


MODELS: dict[str, str | None] = {"tuned": "latest", "stock": None, "base": "base"}
"""The models ``--models`` chooses from, in the order they answer, and the run each serves (the
stock's is looked up in the garden: :func:`stock_run`)."""


def stock_run(garden: Path) -> str:
    """The id of the nursery stock the garden's latest run grows from (what ``--run latest``
    serves), found as ``bonsai train`` finds it."""
    from bonsai.errors import BonsaiError
    from bonsai.garden import Garden
    from bonsai.nursery import stock_ancestor
    from bonsai.runs import load_run

    opened = Garden(garden.resolve())
    try:
        stock = stock_ancestor(opened, load_run(opened, "latest"))
    except BonsaiError as error:
        raise SystemExit(f"{garden}: {error}") from None
    finally:
        opened.close()
    if stock is None:
        raise SystemExit(f"{garden}: its latest run does not grow from the nursery stock")
    return stock.id


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``bonsai serve`` in a child process, for as long as the ``with`` block lasts."""

    def __init__(self, garden: Path, run: str) -> None:
        self.garden, self.run = garden, run
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        command = [*bonsai_command(), "serve", "--garden", str(self.garden)]
        command += ["--run", self.run, "--port", str(self.port)]
        log(f"bonsai serve --run {self.run} --port {self.port}")
        self.process = subprocess.Popen(command, stdout=sys.stderr, stderr=sys.stderr, env=_env())
        deadline = time.monotonic() + SERVER_START_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"`bonsai serve` exited with status {self.process.returncode}")
            try:
                with urllib.request.urlopen(self.url + "/v1/models", timeout=2) as reply:
                    self.model = json.load(reply)["data"][0]["id"]
                    return self
            except OSError:
                time.sleep(1)
        raise SystemExit(f"`bonsai serve` did not answer on {self.url} in {SERVER_START_S} s")

    def __exit__(self, *exc: object) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def ask_all(server: Server, questions: list[Question], max_tokens: int, label: str) -> list[dict]:
    """Every question through the openai client; the replies with timings."""
    from openai import OpenAI

    client = OpenAI(base_url=server.url + "/v1", api_key="unused", timeout=600, max_retries=0)
    answers = []
    for i, q in enumerate(questions, 1):
        extra: dict[str, Any] = {"rag": True}
        if q.category == "question_to_question":
            extra["mode"] = "q2q"
        start = time.monotonic()
        reply = client.chat.completions.create(
            model="bonsai",
            messages=[{"role": "user", "content": q.message()}],
            temperature=0,
            max_tokens=max_tokens,
            extra_body=extra,
        )
        text = reply.choices[0].message.content or ""
        seconds = round(time.monotonic() - start, 1)
        log(f"{label} {i}/{len(questions)} {q.id} ({seconds} s): {_one_line(text)}")
        body = reply.model_dump()
        extra_out = body.get("bonsai") or {}
        answers.append(
            {
                "id": q.id,
                "reply": text,
                "reasoning": body["choices"][0]["message"].get("reasoning_content"),
                "seconds": seconds,
                "finish_reason": extra_out.get("finish_reason"),
                "sources": [hit.get("source") for hit in extra_out.get("sources") or []],
                "turn_id": extra_out.get("turn_id"),
            }
        )
    return answers


STREAM_PROBES = 8
"""Questions asked once more with streaming, to time when the tuned student's answer starts."""


def first_token_seconds(server: Server, questions: list[Question], max_tokens: int) -> list[float]:
    """Seconds from sending each question (streaming, notes on) to the first text of its answer."""
    from openai import OpenAI

    client = OpenAI(base_url=server.url + "/v1", api_key="unused", timeout=600, max_retries=0)
    waits = []
    for q in questions:
        start = time.monotonic()
        stream = client.chat.completions.create(
            model="bonsai",
            messages=[{"role": "user", "content": q.message()}],
            temperature=0,
            max_tokens=max_tokens,
            stream=True,
            extra_body={"rag": True},
        )
        first: float | None = None
        for chunk in stream:
            if first is None and chunk.choices and chunk.choices[0].delta.content:
                first = time.monotonic() - start
        waits.append(round(first if first is not None else time.monotonic() - start, 2))
    return waits


def add_turn_logs(garden: Path, answers: list[dict]) -> None:
    """Add what chat logged of each turn: the prompt the model got, and the category and
    language chat took the question for. Diagnostics only, so a log it cannot read is skipped."""
    import sqlite3

    try:
        conn = sqlite3.connect(f"file:{garden / 'garden.db'}?mode=ro", uri=True)
        with conn:
            for answer in answers:
                row = conn.execute(
                    "SELECT rendered_prompt, category, language FROM chat_turns WHERE id = ?",
                    (answer.get("turn_id"),),
                ).fetchone()
                if row:
                    answer["prompt"], answer["chat_category"], answer["chat_language"] = row
        conn.close()
    except sqlite3.Error as exc:
        log(f"the chat log was not readable ({exc}); diagnostics from it are left out")


def _one_line(text: str, width: int = 90) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def table(summaries: dict[str, dict[str, Any]]) -> str:
    names = list(summaries)
    rows = [f"| {'held-out questions':<18} | " + " | ".join(f"{n:>12}" for n in names) + " |"]
    rows.append("|" + "-" * 20 + "|" + "|".join("-" * 14 for _ in names) + "|")
    for field in (*RESULT_FIELDS, *DIAGNOSTICS):
        cells = []
        for n in names:
            value = summaries[n][field]
            cells.append(f"{value[0]}/{value[1]}" if isinstance(value, list) else str(value))
        rows.append(f"| {field:<18} | " + " | ".join(f"{c:>12}" for c in cells) + " |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("garden", type=Path, help="garden folder (records + notes/) or records")
    parser.add_argument("questions", type=Path, help="held-out questions (JSONL)")
    parser.add_argument("--quick", action="store_true", help="short training, shorter answers")
    parser.add_argument(
        "--out", type=Path, help="JSON of every answer (default: ./garden-quality-NAME.json)"
    )
    parser.add_argument("--keep", type=Path, help="grow the garden in this folder and keep it")
    parser.add_argument("--rescore", type=Path, help="score the replies of an earlier JSON again")
    parser.add_argument(
        "--reuse", type=Path, help="ask a garden grown and kept earlier (--keep), growing nothing"
    )
    parser.add_argument(
        "--train-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="add ARG to `bonsai train` (repeat for more; e.g. --train-arg=--reading=off)",
    )
    parser.add_argument(
        "--models",
        default="tuned,base",
        help="which models answer: tuned, stock (the nursery stock), base (default: tuned,base)",
    )
    args = parser.parse_args(argv)

    questions = load_questions(args.questions)
    if args.rescore:
        return rescore(args.rescore, questions, args.out)
    records, notes = find_garden(args.garden)
    name = (args.garden if args.garden.is_dir() else args.garden.parent).resolve().name
    out = args.out or Path(f"garden-quality-{name}{'-quick' if args.quick else ''}.json")
    log(f"{len(questions)} questions; records {records}; notes {notes or 'none'}")

    chosen = [part.strip() for part in args.models.split(",") if part.strip()]
    unknown = [label for label in chosen if label not in MODELS]
    if unknown or not chosen:
        raise SystemExit(f"--models: choose from {', '.join(MODELS)}, not {args.models!r}")
    if args.reuse is not None and (args.keep is not None or args.train_arg):
        raise SystemExit("--reuse asks a grown garden again: it takes no --keep or --train-arg")
    kept = args.keep if args.reuse is None else args.reuse
    work = Path(tempfile.mkdtemp(prefix="bonsai-quality-")) if kept is None else kept
    garden = work / "garden" if kept is None else kept
    if args.reuse is not None and not (garden / "garden.db").exists():
        raise SystemExit(f"{garden} is not a garden (no garden.db): grow one with --keep DIR")
    if args.keep is not None and garden.exists() and any(garden.iterdir()):
        raise SystemExit(f"{garden} is not empty")
    started = time.monotonic()
    try:
        if args.reuse is None:
            timings = grow(records, notes, garden, args.quick, args.train_arg)
        else:
            log(f"asking the garden grown in {garden} again")
            timings = {}
        max_tokens = MAX_TOKENS["quick" if args.quick else "full"]
        models: dict[str, Any] = {}
        for label in MODELS:
            if label not in chosen:
                continue
            run = MODELS[label] or stock_run(garden)
            t0 = time.monotonic()
            with Server(garden, run) as server:
                answers = ask_all(server, questions, max_tokens, label)
                waits = first_token_seconds(server, questions[:STREAM_PROBES], max_tokens)
            add_turn_logs(garden, answers)
            timings[f"answers {label}"] = round(time.monotonic() - t0, 1)
            models[label] = {"run": server.model, "answers": answers, "first_token_s": waits}
            log(
                f"{label}: answers start after {sorted(waits)[len(waits) // 2]} s (median)"
                f" of {len(waits)} streamed, at most {max(waits)} s"
            )
        score_models(models, questions)
    finally:
        if kept is None:
            shutil.rmtree(work, ignore_errors=True)

    report = {
        "garden": str(args.garden),
        "questions_file": str(args.questions),
        "quick": args.quick,
        "train_args": args.train_arg,
        "reused": str(args.reuse) if args.reuse is not None else None,
        "max_tokens": max_tokens,
        "seconds": round(time.monotonic() - started, 1),
        "timings": timings,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "questions": [q.__dict__ for q in questions],
        "models": models,
    }
    write_and_print(report, out)
    return 0


def score_models(models: dict[str, Any], questions: list[Question]) -> None:
    """Score every model's answers in place; each gets its summary."""
    for model in models.values():
        by_id = {a["id"]: a for a in model["answers"]}
        scores = [
            score_reply(
                q,
                by_id[q.id]["reply"],
                sources=by_id[q.id].get("sources"),
                prompt=by_id[q.id].get("prompt"),
                category=by_id[q.id].get("chat_category"),
            )
            for q in questions
        ]
        for score in scores:
            by_id[score.id].update(score.to_dict())
        model["summary"] = summarise(scores)


def rescore(path: Path, questions: list[Question], out: Path | None) -> int:
    report = json.loads(path.read_text(encoding="utf-8"))
    asked = {a["id"] for m in report["models"].values() for a in m["answers"]}
    missing = [q.id for q in questions if q.id not in asked]
    if missing:
        raise SystemExit(f"{path} has no replies to {', '.join(missing)}")
    for model in report["models"].values():
        for answer in model["answers"]:
            for key in (
                "kind",
                "correct",
                "loop",
                "echo",
                "read_back",
                "chrf",
                "label",
                "questions",
                "note_retrieved",
            ):
                answer.pop(key, None)
    score_models(report["models"], questions)
    report["questions"] = [q.__dict__ for q in questions]
    write_and_print(report, out or path)
    return 0


def write_and_print(report: dict[str, Any], out: Path) -> None:
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(table({label: m["summary"] for label, m in report["models"].items()}))
    for label, model in report["models"].items():
        print(result_line(model["summary"], f"{label} run={model['run']}"))
    for label, model in report["models"].items():
        if model.get("first_token_s"):
            waits = sorted(model["first_token_s"])
            print(
                f"first text of the answer, {label}: median {waits[len(waits) // 2]} s,"
                f" at most {waits[-1]} s ({len(waits)} questions streamed)"
            )
    print(f"answers: {out}  ({report['seconds']:.0f} s in all)")


if __name__ == "__main__":
    sys.exit(main())
