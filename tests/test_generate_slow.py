"""The real embedded student (Gemma 3 270M): answers without loops, through chat and the engine."""

from __future__ import annotations

import pytest

from bonsai.evaluate.metrics import is_looping
from bonsai.garden import Garden
from bonsai.generate import GenerateArgs, deterministic_args, generate

pytestmark = pytest.mark.slow

QUESTIONS = ["日本で一番高い山は何ですか？", "Give three tips for keeping an indoor cat healthy."]


def test_the_embedded_student_answers_without_looping(garden: Garden) -> None:
    from bonsai.chat import ChatArgs
    from bonsai.chat.session import open_session

    session = open_session(
        garden, "base", args=ChatArgs(generate=deterministic_args(max_new_tokens=96))
    )
    assert session.engine.inference["decode"] == "lean gemma step"
    for question in QUESTIONS:
        turn = session.ask(question)
        assert turn.answer.strip(), question
        assert not is_looping(turn.answer), turn.answer
    raw = GenerateArgs(
        max_new_tokens=96, deterministic=True, repetition_penalty=1.0, no_repeat_ngram_size=0,
        stop_on_loop=False,
    )  # fmt: skip
    free = generate(session.engine, "富士山は", raw)
    assert is_looping(free.text)  # what the controls are for: the bare model repeats itself
    controlled = generate(session.engine, "富士山は", deterministic_args(max_new_tokens=96))
    assert not is_looping(controlled.text)


def test_the_embedded_tokenizer_read_directly_is_the_one_transformers_builds() -> None:
    import json
    from pathlib import Path

    from bonsai.student import EMBEDDED_MODEL, load_tokenizer
    from bonsai.student.loading import load_inference_tokenizer

    reference = load_tokenizer(EMBEDDED_MODEL)
    direct = load_inference_tokenizer(EMBEDDED_MODEL)
    sample = Path(__file__).resolve().parents[1] / "src" / "bonsai" / "sample"
    texts = [
        value
        for line in (sample / "cat-care.jsonl").read_text(encoding="utf-8").splitlines()
        for value in json.loads(line).values()
        if isinstance(value, str)
    ]
    texts += [path.read_text(encoding="utf-8") for path in (sample / "notes").glob("*.md")]
    texts += [
        "",
        "  two  spaces ",
        "<bos>x<eos>",
        "<start_of_turn>user\nhi<end_of_turn>",
        "🐱\u200b",
    ]
    for text in texts:
        for special in (True, False):
            ids = reference(text, add_special_tokens=special)["input_ids"]
            assert direct(text, add_special_tokens=special)["input_ids"] == ids, text[:80]
        assert direct.decode(ids, skip_special_tokens=True) == reference.decode(
            ids, skip_special_tokens=True
        )
    for name in ("bos_token_id", "eos_token_id", "pad_token_id", "unk_token_id", "padding_side"):
        assert getattr(direct, name) == getattr(reference, name), name
    assert len(direct) == len(reference)
    assert direct.convert_tokens_to_ids("<end_of_turn>") == reference.convert_tokens_to_ids(
        "<end_of_turn>"
    )
