"""Turning a chat question into a record the student knows how to answer.

The student was trained on records (instruction, input, category, language, reasoning), so a
question becomes one: the question is the instruction, and a text the message carries for it to
read (:func:`split_given_text`) the input, as in the records; retrieved notes go in the layout's
notes section, as clean text with a short label (never a file path: citations are shown to the
person, not copied by the model); a server client's system message and the conversation so far
join the input; the category is the mode's (``question_to_question``), ``translation`` for a
request to translate (its language then names both sides, ``ja-en``), or the one the question
looks like; the language is detected.

A layout that does not show the category (``alpaca``, and the base model) cannot know that it
should answer with questions, so question-to-question mode then spells it out as the instruction
and gives the question as input.
"""

from __future__ import annotations

import re
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


# A request to translate names the language it wants: (pattern, target language).
_TARGETS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"英語|英訳|英文|English|英文|英语", re.IGNORECASE), "en"),
    (re.compile(r"日本語|和訳|Japanese|日语|日文", re.IGNORECASE), "ja"),
    (re.compile(r"中国語|Chinese|中文|汉语", re.IGNORECASE), "zh"),
)
_ASKS_TO_TRANSLATE = re.compile(
    r"translat|訳し|訳して|訳す|訳を|に訳|英訳|和訳|翻訳|翻译|译成|译为|"
    r"\bin (english|japanese|chinese)\b|\bmean in\b|(英語|日本語|中国語)で(言|書|は|何)|"
    r"(英語|日本語|中国語)にして|用(英文|日文|中文|英语|日语)",
    re.IGNORECASE,
)


def translation_request(question: str, given: str = "") -> tuple[str, str] | None:
    """(source, target) languages when ``question`` asks for a translation, else None.

    The target is the language the request names; the source is the language of the text to
    translate (the quoted or given text, or the request itself when it holds the text).
    """
    if not _ASKS_TO_TRANSLATE.search(question):
        return None
    request = _QUOTED.sub(" ", question)
    named = [lang for pattern, lang in _TARGETS if pattern.search(request)]
    text = given.strip() or _text_to_translate(question)
    source = guess_language(text) if text else None
    targets = [lang for lang in named if lang != source]
    if not targets:
        return None
    return source or ("en" if targets[0] != "en" else "ja"), targets[0]


_QUOTED = re.compile(r"「[^」]*」|『[^』]*』|\"[^\"]*\"|“[^”]*”|'[^']*'")
_AFTER_COLON = re.compile(r"[:：]\s*(.+)$", re.DOTALL)


def _text_to_translate(question: str) -> str:
    quoted = _QUOTED.findall(question)
    if quoted:
        return max(quoted, key=len)[1:-1]
    after = _AFTER_COLON.search(question)
    return after.group(1) if after else ""


_PARAGRAPH_BREAK = re.compile(r"\n[ \t\u3000]*\n")
_QUESTION_END = ("?", "？")


def split_given_text(message: str) -> tuple[str, str]:
    """(request, given text) of a chat message; the given text is "" for a message that is all
    request.

    A record keeps the text to read apart from its request (the layout's ``### Input:`` section,
    where closed_qa, classification and translation records hold it); in chat a person types both
    in one message, the request first: "Where did Mochi spend the visit?" then a blank line and
    the visit report. So a message is taken apart at its first blank line when the part before
    it is a single line and the message does not end with a question (a message that leads up
    to its question, "She eats twice a day.\n\nIs that enough?", stays whole).
    """
    text = message.strip()
    parts = _PARAGRAPH_BREAK.split(text, maxsplit=1)
    if len(parts) < 2:
        return text, ""
    request, given = parts[0].strip(), parts[1].strip()
    if not request or not given or "\n" in request or text.endswith(_QUESTION_END):
        return text, ""
    return request, given


def guess_category(question: str, context: str, mode: str) -> str:
    if mode == Q2Q:
        return Q2Q
    if translation_request(question, context):
        return "translation"
    from bonsai.curate.category import suggest_category

    category = suggest_category(question, context).category
    # In answer mode the user wants an answer, whatever the question looks like.
    return "open_qa" if category in (Q2Q, "translation") else category


def record_language(question: str, given: str, category: str, language: str | None) -> str | None:
    """The record's language: for a translation, both sides (``ja-en``)."""
    if category == "translation":
        pair = translation_request(question, given)
        if pair:
            return f"{pair[0]}-{pair[1]}"
    return language


def note_label(hit: Hit) -> str:
    """A retrieved passage's label in the prompt: the document title and heading in words."""
    title, heading = hit.title.strip(), hit.heading.strip()
    if hit.kind != "file":
        return heading
    if not heading or heading.split(" > ")[0] == title:
        return heading or title
    return f"{title} > {heading}"


def notes_that_fit(hits: Sequence[Hit], max_chars: int) -> list[Hit]:
    """The best ``hits`` whose passages fit in ``max_chars`` together (at least the first)."""
    kept: list[Hit] = []
    used = 0
    for hit in hits:
        cost = len(note_label(hit)) + len(hit.text.strip()) + 8
        if kept and used + cost > max_chars:
            break
        kept.append(hit)
        used += cost
    return kept


def notes_block(hits: Sequence[Hit], max_chars: int) -> str:
    """The notes section's text for the ``hits`` that fit in ``max_chars`` (a single passage
    longer than that is cut at a sentence end)."""
    from bonsai.layouts import cut_at_sentence, format_notes

    room = max_chars - 8  # "[n] " and the blank lines around a passage
    passages = [
        (note_label(hit), cut_at_sentence(hit.text.strip(), max(0, room - len(note_label(hit)))))
        for hit in notes_that_fit(hits, max_chars)
    ]
    return format_notes(passages)


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

    given: str = ""
    """The text the message gives to read (:func:`split_given_text`)."""
    system: str = ""
    history: str = ""
    notes: str = ""
    """The notes section (:func:`notes_block`); the layout renders it, not the input."""

    def input_text(self) -> str:
        return "\n\n".join(part for part in (self.given, self.system, self.history) if part)


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
        language=record_language(question, parts.input_text(), category, language),
    )
