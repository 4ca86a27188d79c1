"""Validation of a teacher's answer: what is tidied, what is refused and why."""

from __future__ import annotations

import pytest

from bonsai.records import Record
from bonsai.teach.validate import count_words, tidy, validate

EN = Record(
    id="en",
    instruction="What is the highest mountain in Japan?",
    output="Mount Fuji is the highest mountain in Japan, at 3,776 metres.",
    category="open_qa",
    language="en",
)
CREATIVE = Record(
    id="c",
    instruction="Write a haiku about a cat.",
    output="Sun on the sill",
    category="creative",
    language="en",
)
JA = Record(
    id="ja", instruction="もちの体重は？", output="4.2kgです。", category="closed_qa", language="ja"
)
TRANSLATION = Record(
    id="t",
    instruction="Translate into English: 田中先生に、水をたくさん飲ませるように言われました。",
    output="Dr. Tanaka told me to make sure she drinks plenty of water.",
    category="translation",
    language="ja-en",
)  # fmt: skip

GOOD = "You should recall which peaks are in Japan.\nYou should compare their heights."


def test_good_reasoning_passes() -> None:
    verdict = validate(GOOD, EN, "en")
    assert verdict.ok and verdict.text == GOOD


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("```\nReasoning: " + GOOD + "\n```", GOOD),
        ("<think>long thoughts</think>\n" + GOOD, GOOD),
        ("1. You should recall which peaks are in Japan.\n\n"
         "2) You should compare their heights.", GOOD),
        ('- "You should recall which peaks are in Japan."\n'
         "* You should compare their heights.", GOOD),
        ("**Reasoning:** " + GOOD, GOOD),
    ],
)  # fmt: skip
def test_packaging_is_tidied(answer: str, expected: str) -> None:
    assert tidy(answer) == expected
    assert validate(answer, EN, "en").ok


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (None, "empty"),
        ("   \n ", "empty"),
        ("<think>only thinking</think>", "empty"),
        ("\n".join(["You should check."] * 6), "6 lines"),
        ("You should " + "look closely at every word " * 25, "words"),
        ("Mount Fuji is the highest mountain in Japan, at 3,776 metres.",
         "copy of the record's output"),
        ("You should say Mount Fuji is the highest mountain in Japan, at 3,776 metres.", "output"),
        ("You should check the given answer against a map.", "the given answer"),
        ("Think about the mountains of Japan.\nCompare them.", 'start with "You should'),
        ("Creator should recall the mountains.\nCreator should compare.", "unique-answer category"),
        ("Vous devriez comparer les montagnes du Japon et choisir la plus haute.", "French"),
        ("あなたは日本の山を比べるべきです。", "not written in English"),
    ],
)  # fmt: skip
def test_refusals_say_why(answer: str | None, reason: str) -> None:
    verdict = validate(answer, EN, "en")
    assert not verdict.ok and reason in (verdict.reason or "")


def test_creative_needs_creator_form() -> None:
    assert validate(
        "Creator should pick one image.\nCreator should keep it short.", CREATIVE, "en"
    ).ok
    verdict = validate("You should pick one image.", CREATIVE, "en")
    assert 'needs "Creator should' in (verdict.reason or "")


def test_form_variants_are_accepted() -> None:
    answer = (
        "First, you should find the peaks.\n"
        "This matters because heights are easy to mix up.\n"
        "Then you must compare their heights."
    )
    assert validate(answer, EN, "en").ok
    # But the first line must be in form, and most lines.
    assert not validate("Peaks are many.\nHeights differ.\nYou should compare.", EN, "en").ok


def test_translation_reasoning_may_quote_a_phrase() -> None:
    answer = (
        "You should render 水をたくさん飲ませる as making sure she drinks plenty.\n"
        "You should keep Dr. Tanaka's title."
    )
    assert validate(answer, TRANSLATION, "en").ok


def test_record_language_policy() -> None:
    japanese = "あなたはメモの体重の行を探すべきです。\nあなたは単位を付けて答えるべきです。"
    assert validate(japanese, JA, "record").ok
    assert "not written in Japanese" in (validate(GOOD, JA, "record").reason or "")
    assert validate(GOOD, JA, "en").ok  # policy en: English even for a Japanese record
    chinese = "你应该在笔记中找到体重。\n你应该带单位回答。"
    assert "not written in Japanese" in (validate(chinese, JA, "record").reason or "")
    no_form = "メモを見ます。\n体重は四キロです。"
    assert "Japanese form" in (validate(no_form, JA, "record").reason or "")


def test_word_count_handles_cjk() -> None:
    assert count_words("You should look, then answer.") == 5
    assert count_words("あなたは読むべきです。") == 5  # ten characters, no spaces
    assert count_words("- - ...") == 0
