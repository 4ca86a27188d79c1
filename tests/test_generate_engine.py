"""The transformers engine on tiny models: same tokens as transformers' generate, streaming that
never takes text back, stops, loops cut off, cancellation, limits."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from generate_support import inference_thread_count  # noqa: F401

from bonsai.errors import BonsaiError
from bonsai.evaluate.metrics import is_looping
from bonsai.generate import GenerateArgs, deterministic_args, generate
from bonsai.generate.engine import TransformersGenerator
from bonsai.student import load_model, load_tokenizer

PROMPT = "### Instruction:\nWhat does Mochi eat?\n\n### Response:\n"
RAW = dict(repetition_penalty=1.0, no_repeat_ngram_size=0, stop_on_loop=False)


@pytest.fixture(scope="module")
def engine(tiny_model_dir: Path) -> TransformersGenerator:
    name = str(tiny_model_dir)
    return TransformersGenerator(load_model(name), load_tokenizer(name), model_id="tiny")


def test_greedy_tokens_match_transformers_generate(engine: TransformersGenerator) -> None:
    tok = engine.tokenizer
    ids = tok(PROMPT, return_tensors="pt")
    with torch.inference_mode():
        out = engine.model.generate(**ids, max_new_tokens=24, do_sample=False, min_new_tokens=24)
    expected = tok.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)
    got = generate(engine, PROMPT, deterministic_args(max_new_tokens=24, **RAW))
    assert got.text == expected.rstrip("\ufffd")
    assert got.completion_tokens == 24 and got.finish_reason == "length"


def test_stream_deltas_add_up_to_the_answer(engine: TransformersGenerator) -> None:
    for args in (deterministic_args(max_new_tokens=40), GenerateArgs(max_new_tokens=40, seed=3)):
        deltas: list[str] = []
        result = generate(engine, PROMPT, args, on_text=deltas.append)
        assert "".join(deltas) == result.text
        assert len(deltas) > 1  # it streamed, rather than handing everything over at the end


def test_deterministic_and_seeded_runs_repeat(engine: TransformersGenerator) -> None:
    a = generate(engine, PROMPT, deterministic_args(max_new_tokens=30)).text
    b = generate(engine, PROMPT, deterministic_args(max_new_tokens=30)).text
    assert a == b
    s1 = generate(engine, PROMPT, GenerateArgs(max_new_tokens=30, seed=11)).text
    s2 = generate(engine, PROMPT, GenerateArgs(max_new_tokens=30, seed=11)).text
    assert s1 == s2


def test_stop_sequence_ends_the_answer_before_it(engine: TransformersGenerator) -> None:
    full = generate(engine, PROMPT, deterministic_args(max_new_tokens=40, **RAW)).text
    stop = full[len(full) // 2 : len(full) // 2 + 3]
    assert stop.strip("\ufffd") == stop and stop  # a clean piece of text
    deltas: list[str] = []
    cut = generate(
        engine,
        PROMPT,
        deterministic_args(max_new_tokens=40, stop=(stop,), **RAW),
        on_text=deltas.append,
    )
    assert cut.finish_reason == "stop"
    assert cut.text == full[: full.index(stop)]
    assert "".join(deltas) == cut.text  # the stop text was never streamed


def test_loops_are_cut_and_the_defaults_prevent_them(engine: TransformersGenerator) -> None:
    # Without any control, this tiny model falls into a loop, like the real base model does.
    free = generate(
        engine,
        PROMPT,
        deterministic_args(max_new_tokens=120, repetition_penalty=1.0, no_repeat_ngram_size=0),
    )
    unchecked = generate(engine, PROMPT, deterministic_args(max_new_tokens=120, **RAW))
    assert is_looping(unchecked.text)
    assert free.finish_reason == "loop"
    assert unchecked.text.startswith(free.text) and len(free.text) < len(unchecked.text)
    deltas: list[str] = []
    again = generate(
        engine,
        PROMPT,
        deterministic_args(max_new_tokens=120, repetition_penalty=1.0, no_repeat_ngram_size=0),
        on_text=deltas.append,
    )
    assert "".join(deltas) == again.text == free.text  # the repeats were held back, not streamed
    controlled = generate(engine, PROMPT, deterministic_args(max_new_tokens=120))
    assert not is_looping(controlled.text)


def test_closing_the_stream_cancels_with_what_was_sent(engine: TransformersGenerator) -> None:
    stream = engine.stream(PROMPT, GenerateArgs(max_new_tokens=200, seed=1))
    sent = [next(stream), next(stream)]
    stream.close()
    result = stream.result
    assert result.finish_reason == "cancelled"
    assert result.text == "".join(sent)
    untouched = engine.stream(PROMPT, GenerateArgs(max_new_tokens=5))
    untouched.close()
    assert untouched.result.finish_reason == "cancelled" and untouched.result.text == ""


def test_end_of_text_token_stops(engine: TransformersGenerator) -> None:
    ids = engine.tokenizer(PROMPT, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        first_id = int(engine.model(input_ids=ids).logits[0, -1].argmax())  # the greedy choice
    saved = engine.eos_ids
    engine.eos_ids = {*saved, first_id}
    try:
        result = generate(engine, PROMPT, deterministic_args(max_new_tokens=10, **RAW))
    finally:
        engine.eos_ids = saved
    assert result.finish_reason == "stop" and result.text == ""


def test_a_prompt_longer_than_the_context_is_a_clear_error(tiny_model_dir: Path) -> None:
    name = str(tiny_model_dir)
    small = TransformersGenerator(
        load_model(name), load_tokenizer(name), model_id="tiny", max_context=16
    )
    with pytest.raises(BonsaiError, match="at most 15"):
        small.stream(PROMPT * 3, GenerateArgs())
    # The answer is cut at the context limit, not at max_new_tokens.
    result = generate(small, "Mochi", deterministic_args(max_new_tokens=100, **RAW))
    assert result.prompt_tokens + result.completion_tokens <= 16
    assert result.finish_reason == "length"


def test_llama_architecture_works_too(tiny_llama_dir: Path) -> None:
    name = str(tiny_llama_dir)
    engine = TransformersGenerator(load_model(name), load_tokenizer(name), model_id="llama")
    result = generate(engine, "猫は", GenerateArgs(max_new_tokens=12, seed=0))
    assert result.completion_tokens >= 1 and result.seconds > 0


def test_the_fast_int8_engine_streams_the_same_way(tiny_model_dir: Path) -> None:
    name = str(tiny_model_dir)
    fast = TransformersGenerator(
        load_model(name), load_tokenizer(name), model_id="tiny", precision="int8"
    )
    assert fast.inference["int8_layers"] == 14
    deltas: list[str] = []
    first = generate(fast, PROMPT, deterministic_args(max_new_tokens=30), on_text=deltas.append)
    again = generate(fast, PROMPT, deterministic_args(max_new_tokens=30))
    assert first.text == again.text == "".join(deltas) and first.completion_tokens >= 1


def test_context_weighing_follows_the_answer_in_both_prompts(
    engine: TransformersGenerator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a prior prompt, every token is chosen from both prompts' next-token scores for the
    answer so far: the same tokens as scoring both whole sequences anew at each step."""
    from bonsai.generate import engine as engine_module
    from bonsai.generate.controls import weigh_context

    weighed: list[int] = []

    def counted(a: torch.Tensor, b: torch.Tensor, weight: float) -> torch.Tensor:
        weighed.append(1)
        return weigh_context(a, b, weight)

    monkeypatch.setattr(engine_module, "weigh_context", counted)
    with_notes = "### Notes:\n[1] Mochi eats two pouches of wet food a day.\n\n" + PROMPT
    args = deterministic_args(max_new_tokens=12, context_weight=0.5, **RAW)
    got = generate(engine, with_notes, args, prior=PROMPT)
    tok = engine.tokenizer
    context_ids, prior_ids = tok(with_notes)["input_ids"], tok(PROMPT)["input_ids"]
    answer: list[int] = []
    with torch.inference_mode():
        for _ in range(12):
            a = engine.model(input_ids=torch.tensor([context_ids + answer])).logits[0, -1]
            b = engine.model(input_ids=torch.tensor([prior_ids + answer])).logits[0, -1]
            answer.append(int(torch.argmax(weigh_context(a.float(), b.float(), 0.5))))
    assert got.text == tok.decode(answer, skip_special_tokens=True).rstrip("\ufffd")
    assert len(weighed) == 12  # every token was weighed
    plain = generate(engine, with_notes, args)
    assert len(weighed) == 12  # without a prior, none
    # The weight 0 and the prompt itself as its prior both leave greedy decoding as it is.
    off = deterministic_args(max_new_tokens=12, context_weight=0.0, **RAW)
    assert generate(engine, with_notes, off, prior=PROMPT).text == plain.text
    assert generate(engine, with_notes, args, prior=with_notes).text == plain.text
