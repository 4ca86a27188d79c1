"""Context-aware decoding's cost: answers weighed against the prompt without its notes.

    .venv/bin/python bench/context_decoding.py [--tokens 64] [--rounds 2]

An open or closed question answered from the notes is decoded over two prompts, with and
without the notes (:attr:`bonsai.generate.GenerateArgs.context_weight`). This bench measures
what that costs on the default engine (the embedded Gemma 3 270M, int8 layers), side by side in
one process, the three ways taking turns prompt by prompt so that a busy machine slows them
alike:

- ``plain``: the prompt with its notes alone (``context_weight`` 0);
- ``paired``: weighed, both sequences stepped in one pass over the weights (the default,
  :func:`bonsai.generate.gemma_step.step_pair`);
- ``separate``: weighed, each sequence stepped on its own (what the pass saves).

The prompts are chat's, in the ``bonsai-multitask`` layout: a question on the bundled sample
garden with one of its note sections as the notes (English, Japanese and Chinese questions).
Every answer is greedy and runs to ``--tokens`` new tokens (no stop, no loop cut), so the three
do the same number of steps; the bench checks that ``paired`` and ``separate`` write the same
text. Tokens/s counts new tokens over wall time, both prompts' reading included.

Prints ``RESULT plain_tokens_per_s=… paired_tokens_per_s=… separate_tokens_per_s=…
paired_vs_separate=… paired_vs_plain=…`` last (means over every prompt and round).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import torch  # noqa: E402

from bonsai.generate import (  # noqa: E402
    deterministic_args,
    gemma_step,
    generate,
)
from bonsai.generate.engine import TransformersGenerator  # noqa: E402
from bonsai.generate.fast import inference_threads  # noqa: E402
from bonsai.generate.prompting import get_layout  # noqa: E402
from bonsai.layouts import format_notes  # noqa: E402
from bonsai.records import Record  # noqa: E402
from bonsai.student import load_model, load_tokenizer, resolve_base_model  # noqa: E402

NOTES = ROOT / "src" / "bonsai" / "sample" / "notes"
QUESTIONS = [
    ("How much wet food does Mochi get in the morning?", "en"),
    ("もちのワクチンはいつ打ちましたか？", "ja"),
    ("麻糬每天喝多少水？", "zh"),
]
RAW = dict(repetition_penalty=1.0, no_repeat_ngram_size=0, stop_on_loop=False)


def note_section() -> str:
    """The first section of the first sample note: a passage of the length chat puts in."""
    text = sorted(NOTES.glob("*.md"))[0].read_text(encoding="utf-8")
    return text[:1200]


def prompts() -> list[tuple[str, str]]:
    """(prompt with notes, the same prompt without them) for each question."""
    layout = get_layout("bonsai-multitask")
    notes = format_notes([("Sample notes", note_section())])
    pairs = []
    for question, language in QUESTIONS:
        record = Record(id="bench", instruction=question, category="open_qa", language=language)
        pairs.append((layout.render(record, notes), layout.render(record, "")))
    return pairs


def separate_steps(first, second, token: int):
    return first.step(token), second.step(token)


def timed(engine, prompt: str, prior: str | None, tokens: int, weight: float):
    args = deterministic_args(max_new_tokens=tokens, context_weight=weight, **RAW)
    started = time.perf_counter()
    result = generate(engine, prompt, args, prior=prior)
    return result.completion_tokens / (time.perf_counter() - started), result.text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="embedded:gemma-3-270m")
    parser.add_argument("--tokens", type=int, default=64, help="new tokens per answer")
    parser.add_argument("--rounds", type=int, default=2, help="passes over the prompts")
    opts = parser.parse_args()
    torch.set_num_threads(inference_threads())
    path = resolve_base_model(opts.model)
    engine = TransformersGenerator(
        load_model(path), load_tokenizer(path), model_id="bench", precision="int8"
    )
    print(f"model {opts.model}; {engine.inference}; torch threads {torch.get_num_threads()}")
    paired_step = gemma_step.step_pair
    speeds: dict[str, list[float]] = {"plain": [], "paired": [], "separate": []}
    same = total = 0
    timed(engine, *prompts()[0], 8, 0.5)  # warm up
    for round_no in range(opts.rounds):
        for prompt, prior in prompts():
            plain, _ = timed(engine, prompt, None, opts.tokens, 0.0)
            gemma_step.step_pair = paired_step
            paired, paired_text = timed(engine, prompt, prior, opts.tokens, 0.5)
            gemma_step.step_pair = separate_steps
            separate, separate_text = timed(engine, prompt, prior, opts.tokens, 0.5)
            gemma_step.step_pair = paired_step
            speeds["plain"].append(plain)
            speeds["paired"].append(paired)
            speeds["separate"].append(separate)
            same += paired_text == separate_text
            total += 1
            print(
                f"round {round_no + 1}  plain {plain:6.1f} | paired {paired:6.1f} | "
                f"separate {separate:6.1f} tok/s",
                flush=True,
            )
    mean = {name: statistics.mean(values) for name, values in speeds.items()}
    print(f"paired and separate wrote the same text for {same} of {total} prompts")
    print(
        f"RESULT plain_tokens_per_s={mean['plain']:.1f} paired_tokens_per_s={mean['paired']:.1f}"
        f" separate_tokens_per_s={mean['separate']:.1f}"
        f" paired_vs_separate={mean['paired'] / mean['separate']:.2f}"
        f" paired_vs_plain={mean['paired'] / mean['plain']:.2f}"
    )


if __name__ == "__main__":
    main()
