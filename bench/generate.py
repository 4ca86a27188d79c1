"""Generation speed: BONSAI's engine against transformers' default ``generate`` (and llama.cpp).

    .venv/bin/python bench/generate.py [--model embedded:gemma-3-270m] [--tokens 64] [--rounds 2]
                                       [--loops 12] [--threads N]

Same model (the embedded Gemma 3 270M by default), same prompts, same number of new tokens,
measured side by side in one process, the engines taking turns prompt by prompt so that a busy
machine slows them alike:

- ``hf``: what a user gets from ``AutoModelForCausalLM.from_pretrained(path).generate(...)``
  with default settings (the dtype transformers picks: "auto", i.e. the checkpoint's bfloat16),
  greedy;
- ``bonsai-bf16``: BONSAI's engine with the exact bf16 body and the 4-bit-then-exact output
  layer, greedy, with no repetition control (the same work as ``hf``);
- ``bonsai-int8``: the same with int8 weight-only linear layers (the default engine);
- ``bonsai-chat``: the default engine with chat's default settings (sampling, repetition
  penalty, n-gram ban, loop detector), which is what a user waits for;
- ``llama.cpp``: only when ``llama-cpp-python`` is installed (``pip install '.[llama]'``: it
  builds from source), on the Q4_K_M GGUF the embedded model ships as, with BONSAI's controls.

It also reports how close the fast engines are to ``hf``: whether their greedy text is the same,
and the share of positions where the int8 engine's most likely next token equals the bf16
model's, scored teacher-forced over ``hf``'s own answers. With ``--loops N`` it measures the
share of N probe answers that loop (evaluate's ``is_looping``): greedy without any control,
with the repetition controls, and as chat answers them (controls and the layout's stops).

Tokens/s counts generated tokens over wall time, prompt processing included.
Prints ``RESULT tokens_per_s=… hf_tokens_per_s=… ratio=…`` last.
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

from bonsai.evaluate.metrics import is_looping  # noqa: E402
from bonsai.generate import GenerateArgs, deterministic_args, generate  # noqa: E402
from bonsai.generate.engine import TransformersGenerator  # noqa: E402
from bonsai.generate.fast import inference_threads  # noqa: E402
from bonsai.student import load_tokenizer, resolve_base_model  # noqa: E402

PROMPTS = [
    "### Instruction:\n日本で一番高い山は何ですか？\n\n### Response:\n",
    "### Instruction:\nGive three tips for keeping an indoor cat healthy.\n\n### Response:\n",
    "### Instruction:\n猫每天应该喝多少水？\n\n### Response:\n",
    "### Instruction:\nTranslate into Japanese: My cat is six years old.\n\n### Response:\n",
]
RAW = dict(repetition_penalty=1.0, no_repeat_ngram_size=0, stop_on_loop=False)


def load_hf(path: str):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path).eval()


def hf_generate(model, tokenizer, prompt: str, tokens: int) -> tuple[int, float, str]:
    inputs = tokenizer(prompt, return_tensors="pt")
    started = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=tokens, do_sample=False)
    seconds = time.perf_counter() - started
    new = out[0, inputs["input_ids"].shape[1] :]
    return len(new), seconds, tokenizer.decode(new, skip_special_tokens=True)


def ours(engine, prompt: str, args: GenerateArgs) -> tuple[int, float, str]:
    started = time.perf_counter()
    result = generate(engine, prompt, args)
    return result.completion_tokens, time.perf_counter() - started, result.text


def top1_agreement(reference_model, fast_model, tokenizer, texts: list[tuple[str, str]]) -> float:
    """Share of answer positions where both models' most likely next token is the same."""
    same = total = 0
    with torch.inference_mode():
        for prompt, answer in texts:
            ids = tokenizer(prompt + answer, return_tensors="pt")["input_ids"]
            start = len(tokenizer(prompt)["input_ids"]) - 1
            a = reference_model(input_ids=ids).logits[0, start:-1].argmax(-1)
            b = fast_model(input_ids=ids).logits[0, start:-1].argmax(-1)
            same += int((a == b).sum())
            total += a.numel()
    return same / total if total else 1.0


def llama_cpp_speed(tokens: int) -> float | None:
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return None
    from bonsai.generate.llama_engine import embedded_gguf_generator

    engine = embedded_gguf_generator()
    rates = []
    for prompt in PROMPTS:
        n, seconds, _ = ours(engine, prompt, deterministic_args(max_new_tokens=tokens, **RAW))
        rates.append(n / seconds)
    return statistics.mean(rates)


def loop_rates(engine, count: int, tokens: int) -> tuple[float, float, float]:
    """Share of probe answers that loop: greedy with no control at all, with the repetition
    controls only, and as chat answers (controls plus the layout's stop sequences)."""
    from bonsai.evaluate.probes import builtin_probes
    from bonsai.generate.prompting import get_layout
    from bonsai.records import Record

    layout = get_layout("alpaca")
    probes = builtin_probes()[:count]
    counts = [0, 0, 0]
    for probe in probes:
        record = Record(id=probe["id"], instruction=probe["instruction"], input=probe["input"])
        prompt = layout.render(record)
        settings = [
            deterministic_args(max_new_tokens=tokens, **RAW),
            GenerateArgs(max_new_tokens=tokens, seed=0),
            GenerateArgs(max_new_tokens=tokens, seed=0).with_stop(layout.stop),
        ]
        for i, args in enumerate(settings):
            counts[i] += is_looping(generate(engine, prompt, args).text)
    raw, controls, chat = (c / len(probes) for c in counts)
    return raw, controls, chat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="embedded:gemma-3-270m")
    parser.add_argument("--tokens", type=int, default=64, help="new tokens per answer")
    parser.add_argument("--rounds", type=int, default=2, help="passes over the prompts")
    parser.add_argument("--loops", type=int, default=0, help="probe answers for the loop rate")
    parser.add_argument(
        "--threads", type=int, default=0, help="torch threads for both (default: as chat uses)"
    )
    opts = parser.parse_args()
    # Both engines run with the threads chat and serve use (one fewer than the CPUs): with every
    # core busy, a thread that is not scheduled stalls each parallel kernel, for hf as for us.
    torch.set_num_threads(opts.threads or inference_threads())

    path = resolve_base_model(opts.model)
    tokenizer = load_tokenizer(path)
    print(f"model {opts.model} ({path}); torch threads {torch.get_num_threads()}", flush=True)
    hf_model = load_hf(path)
    print(f"hf default dtype: {hf_model.dtype}", flush=True)
    engines = {}
    for precision in ("bf16", "int8"):
        started = time.perf_counter()
        engine = TransformersGenerator(
            load_hf(path), tokenizer, model_id=precision, precision=precision
        )
        engines[precision] = engine
        print(
            f"bonsai-{precision}: {engine.inference} (prepared in "
            f"{time.perf_counter() - started:.1f} s)",
            flush=True,
        )

    speeds: dict[str, list[float]] = {k: [] for k in ("hf", "bf16", "int8", "chat")}
    same_text = {"bf16": 0, "int8": 0}
    answers: list[tuple[str, str]] = []
    runs = 0
    for round_no in range(opts.rounds):
        for prompt in PROMPTS:
            n, seconds, reference = hf_generate(hf_model, tokenizer, prompt, opts.tokens)
            speeds["hf"].append(n / seconds)
            line = f"round {round_no + 1}  hf {n / seconds:6.1f} tok/s"
            for precision, engine in engines.items():
                args = deterministic_args(max_new_tokens=opts.tokens, **RAW)
                n, seconds, text = ours(engine, prompt, args)
                speeds[precision].append(n / seconds)
                same_text[precision] += text == reference.rstrip("\ufffd")
                line += f" | {precision} {n / seconds:6.1f}"
            n, seconds, _ = ours(
                engines["int8"], prompt, GenerateArgs(max_new_tokens=opts.tokens, seed=round_no)
            )
            speeds["chat"].append(n / seconds)
            line += f" | chat {n / seconds:6.1f} ({n} tokens)"
            print(line, flush=True)
            runs += 1
            if round_no == 0:
                answers.append((prompt, reference))

    mean = {k: statistics.mean(v) for k, v in speeds.items()}
    agreement = top1_agreement(hf_model, engines["int8"].model, tokenizer, answers)
    # HF rounds its logits to bf16, where near-ties (about 2% of positions) become exact ties
    # that argmax breaks by token id; BONSAI scores the best tokens in float32. So even the bf16
    # engine's greedy text departs from hf's at such a tie, by being more precise.
    print(
        f"greedy text identical to hf: bf16 {same_text['bf16']}/{runs}, "
        f"int8 {same_text['int8']}/{runs}; int8 top-1 agreement with bf16 "
        f"(teacher-forced): {agreement:.3f}",
        flush=True,
    )
    llama = llama_cpp_speed(opts.tokens)
    if llama is not None:
        print(f"llama.cpp {llama:.1f} tok/s", flush=True)
    extra = ""
    if opts.loops:
        raw, controls, chat = loop_rates(engines["int8"], opts.loops, 128)
        print(
            f"loop rate over {opts.loops} probes (128 tokens): greedy without controls "
            f"{raw:.0%}, repetition controls {controls:.0%}, as chat answers {chat:.0%}",
            flush=True,
        )
        extra = (
            f" loop_rate_raw={raw:.2f} loop_rate_controls={controls:.2f} loop_rate_chat={chat:.2f}"
        )
    ratio = mean["int8"] / mean["hf"]
    llama_part = f" llama_cpp_tokens_per_s={llama:.1f}" if llama is not None else ""
    print(
        f"RESULT tokens_per_s={mean['int8']:.1f} hf_tokens_per_s={mean['hf']:.1f} "
        f"ratio={ratio:.2f} bf16_tokens_per_s={mean['bf16']:.1f} "
        f"bf16_ratio={mean['bf16'] / mean['hf']:.2f} chat_tokens_per_s={mean['chat']:.1f} "
        f"int8_top1_agreement={agreement:.3f}{llama_part}{extra}"
    )


if __name__ == "__main__":
    main()
