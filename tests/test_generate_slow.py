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
