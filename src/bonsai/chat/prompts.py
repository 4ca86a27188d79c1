"""Turning a chat question into a record the student knows how to answer.

The student was trained on records (instruction, input, category, language, reasoning), so a
question becomes one: the question is the instruction; retrieved notes (and, from a server
client, its system message and the conversation so far) become the input; the category is the
mode's (``question_to_question``) or the one the question looks like; the language is detected.

A layout that does not show the category (``alpaca``, and the base model) cannot know that it
should answer with questions, so question-to-question mode then spells it out as the instruction
and gives the question as input.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bonsai.errors import BonsaiError
from bonsai.records import Record

if TYPE_CHECKING:
    from bonsai.rag import Hit

ANSWER = "answer"
Q2Q = "question_to_question"
MODES = (ANSWER, Q2Q)
MODE_ALIASES = {"answer": ANSWER, "a": ANSWER, "q2q": Q2Q, "question_to_question": Q2Q, "q": Q2Q}

Q2Q_INSTRUCTIONS = {
    "en": (
        "Do not answer the question below. Instead, reply with 2 to 4 sharper questions that "
        "would help the person find out what they really want to know. Write one question per "
        "line, in the language of the question."
    ),
    "ja": (
        "次の質問には答えないでください。代わりに、質問者が本当に知りたいことを見つけるのに"
        "役立つ、より鋭い質問を2〜4個、1行に1つずつ書いてください。"
    ),
    "zh": (
        "不要直接回答下面的问题。请提出2到4个更具体的问题，"
        "帮助提问者弄清真正想知道的事情。每行写一个问题。"
    ),
}
NOTES_HEADER = {"en": "Notes:", "ja": "メモ:", "zh": "笔记:"}
HISTORY_HEADER = "Conversation so far:"


def normalise_mode(value: str) -> str:
    mode = MODE_ALIASES.get(value.strip().lower().replace("-", "_"))
    if mode is None:
        raise BonsaiError(f"unknown mode '{value}'", field="mode", hint="use answer or q2q")
    return mode


def guess_language(text: str) -> str | None:
    """ISO 639-1 code of ``text``: the script decides CJK, a word list certain English, and the
    statistical detector the rest."""
    from bonsai.curate.language import default_detector, english_shortcut, script_language

    found = script_language(text)
    if found:
        return found
    if english_shortcut(text):
        return "en"
    return default_detector().detect(text)


def guess_category(question: str, context: str, mode: str) -> str:
    if mode == Q2Q:
        return Q2Q
    from bonsai.curate.category import suggest_category

    category = suggest_category(question, context).category
    # In answer mode the user wants an answer, whatever the question looks like.
    return "open_qa" if category == Q2Q else category


def notes_block(hits: Sequence[Hit], language: str | None, max_chars: int) -> str:
    from bonsai.rag import format_context

    if not hits:
        return ""
    header = NOTES_HEADER.get(language or "en", NOTES_HEADER["en"])
    return f"{header}\n{format_context(hits, max_chars=max_chars)}"


def history_block(history: Sequence[tuple[str, str]], max_chars: int) -> str:
    """The conversation before the question, newest kept when it is too long."""
    if not history:
        return ""
    lines = [
        f"{'User' if role == 'user' else 'Assistant'}: {text.strip()}" for role, text in history
    ]
    text = "\n".join(lines)
    if len(text) > max_chars:
        text = "…" + text[-max_chars:]
    return f"{HISTORY_HEADER}\n{text}"


@dataclass
class PromptParts:
    """What goes into the record besides the question."""

    system: str = ""
    history: str = ""
    notes: str = ""

    def input_text(self) -> str:
        return "\n\n".join(part for part in (self.system, self.history, self.notes) if part)


def build_record(
    question: str,
    *,
    mode: str,
    parts: PromptParts,
    language: str | None,
    category: str,
    layout_shows_category: bool,
) -> Record:
    """The record the layout renders for this question."""
    context = parts.input_text()
    instruction = question.strip()
    if mode == Q2Q and not layout_shows_category:
        directive = Q2Q_INSTRUCTIONS.get(language or "en", Q2Q_INSTRUCTIONS["en"])
        instruction = directive
        context = "\n\n".join(p for p in (f"Question: {question.strip()}", context) if p)
    return Record(
        id="chat",
        instruction=instruction,
        input=context,
        category=category,
        language=language,
    )
