"""Reading the prompt: seconds to an answer's first text, the int8 kernel against bf16 products.

    .venv/bin/python bench/prefill.py [--rounds 2] [--tokens 48]

A chat answer starts only after the student has read the whole prompt (the question, the notes
retrieved for it, the layout's scaffold: 200 to 650 tokens), and on a CPU that reading is most
of the wait. The int8 layers of the default engine (:class:`bonsai.generate.fast.Int8Linear`)
run torch's int8 kernel for one token at a time and, from :data:`PREFILL_MIN_ROWS` tokens on,
turn their weights into bf16 for one matrix product. This bench asks the same questions both
ways, side by side in one process, taking turns question by question so that a busy machine
slows both alike:

- ``int8-kernel``: every layer through the int8 kernel (``prefill_min_rows = None``);
- ``bf16-product``: the default.

The garden is the bundled sample (its records and notes, in a fresh temporary garden), the
student its nursery stock, the questions the hand-written ones of bench/data/notes_queries.json
(English, Japanese and Chinese), asked through :class:`bonsai.chat.session.ChatSession` as
``bonsai chat`` asks them: notes retrieved, prompt built, answer streamed. Answers are greedy, and
the bench says how many came out word for word the same both ways. Greedy text drifts apart at
the first near-tie, so closeness is also scored where it can be compared: teacher-forced over
the sample notes (400-token pieces), the share of positions where the base model, made int8
either way, picks the float32 model's most likely next token.

Prints ``RESULT first_text_s=… int8_kernel_first_text_s=… ratio=… top1_fp32=…
int8_kernel_top1_fp32=…`` last (medians over every question and round; ratio = int8 kernel /
bf16 product, above 1 is faster).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from bonsai.chat.session import ChatArgs, open_session  # noqa: E402
from bonsai.garden import Garden  # noqa: E402
from bonsai.generate import deterministic_args  # noqa: E402
from bonsai.generate.fast import PREFILL_MIN_ROWS, Int8Linear  # noqa: E402
from bonsai.nursery import install_stock  # noqa: E402
from bonsai.sample import notes_dir, records_path  # noqa: E402

QUERIES = ROOT / "bench" / "data" / "notes_queries.json"
WAYS: dict[str, int | None] = {"int8-kernel": None, "bf16-product": PREFILL_MIN_ROWS}


def bonsai(*args: str) -> None:
    exe = Path(sys.executable).parent / "bonsai"
    subprocess.run([str(exe), *args], check=True, stdout=subprocess.DEVNULL)


def sample_garden(folder: Path) -> Garden:
    """The sample records and notes in a new garden, with the nursery stock installed."""
    bonsai("init", str(folder))
    bonsai("data", "import", str(records_path()), "--dataset", "cats", "--garden", str(folder))
    bonsai("notes", "add", str(notes_dir()), "--dataset", "cats", "--garden", str(folder))
    garden = Garden(folder)
    install_stock(garden)
    return garden


def set_way(model: object, rows: int | None) -> int:
    layers = [m for m in model.modules() if isinstance(m, Int8Linear)]  # type: ignore[attr-defined]
    for layer in layers:
        layer.prefill_min_rows = rows
    return len(layers)


def stamp(marks: list[float]):
    """An ``on_delta`` that notes when each piece of text arrives."""
    return lambda _kind, _text: marks.append(time.perf_counter())


def agreement_with_fp32(tokens: int = 400, chars: int = 1000) -> dict[str, float]:
    """Each way's share of positions where the int8 base model's most likely next token is the
    float32 model's, over pieces of the sample notes (teacher-forced: every position of a
    piece in one pass, as a prompt is read)."""
    import torch
    from transformers import AutoModelForCausalLM

    from bonsai.generate.fast import prepare_for_inference
    from bonsai.student import load_tokenizer, resolve_base_model

    path = resolve_base_model("embedded:gemma-3-270m")
    tokenizer = load_tokenizer(path)
    pieces = []
    for note in sorted(notes_dir().glob("*.md")):
        text = note.read_text(encoding="utf-8")
        pieces += [text[i : i + chars] for i in range(0, len(text), chars)]
    ids = [tokenizer(p, return_tensors="pt")["input_ids"][:, :tokens] for p in pieces]
    with torch.inference_mode():
        reference = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
        best = [reference(input_ids=i).logits[0].argmax(-1) for i in ids]
        del reference
        model = AutoModelForCausalLM.from_pretrained(path).eval()
        prepare_for_inference(model, "int8")
        shares = {}
        for way, rows in WAYS.items():
            set_way(model, rows)
            same = sum(
                int((model(input_ids=i).logits[0].argmax(-1) == b).sum())
                for i, b in zip(ids, best, strict=True)
            )
            shares[way] = same / sum(b.numel() for b in best)
    return shares


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="passes over the questions")
    parser.add_argument("--tokens", type=int, default=48, help="most tokens of each answer")
    opts = parser.parse_args()
    questions = [q["query"] for q in json.loads(QUERIES.read_text(encoding="utf-8"))["queries"]]

    with tempfile.TemporaryDirectory(prefix="bonsai-prefill-") as tmp:
        garden = sample_garden(Path(tmp) / "garden")
        stock = install_stock(garden)
        args = ChatArgs(generate=deterministic_args(max_new_tokens=opts.tokens))
        session = open_session(garden, stock, args=args)
        model = session.engine.model
        layers = set_way(model, None)
        print(f"student {stock}: {layers} int8 layers; {len(questions)} questions", flush=True)
        session.ask(questions[0])  # loads the retrieval encoder and the language detector

        first_text: dict[str, list[float]] = {way: [] for way in WAYS}
        prompt_tokens: list[int] = []
        same = asked = 0
        for round_no in range(opts.rounds):
            for n, question in enumerate(questions):
                order = list(WAYS) if (n + round_no) % 2 == 0 else list(reversed(WAYS))
                answers = {}
                for way in order:
                    set_way(model, WAYS[way])
                    marks: list[float] = []
                    started = time.perf_counter()
                    turn = session.ask(question, on_delta=stamp(marks))
                    end = marks[0] if marks else time.perf_counter()
                    first_text[way].append(end - started)
                    answers[way] = turn.answer
                prompt_tokens.append(turn.generation.prompt_tokens)
                same += answers["int8-kernel"] == answers["bf16-product"]
                asked += 1
            print(
                f"round {round_no + 1}: first text, median "
                + ", ".join(f"{w} {statistics.median(v):.2f} s" for w, v in first_text.items()),
                flush=True,
            )

    kernel = statistics.median(first_text["int8-kernel"])
    product = statistics.median(first_text["bf16-product"])
    print(
        f"prompts {min(prompt_tokens)}–{max(prompt_tokens)} tokens "
        f"(median {statistics.median(prompt_tokens):.0f}); slowest first text: "
        f"int8 kernel {max(first_text['int8-kernel']):.2f} s, bf16 product "
        f"{max(first_text['bf16-product']):.2f} s; same greedy answer {same} of {asked}",
        flush=True,
    )
    top1 = agreement_with_fp32()
    print(
        "teacher-forced top-1 agreement with the float32 model: "
        + ", ".join(f"{way} {share:.4f}" for way, share in top1.items())
    )
    print(
        f"RESULT first_text_s={product:.2f} int8_kernel_first_text_s={kernel:.2f} "
        f"ratio={kernel / product:.2f} top1_fp32={top1['bf16-product']:.4f} "
        f"int8_kernel_top1_fp32={top1['int8-kernel']:.4f}"
    )


if __name__ == "__main__":
    main()
