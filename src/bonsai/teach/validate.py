"""Checks on a teacher's answer before it becomes a record's reasoning.

An answer is first tidied (code fences, a "Reasoning:" label, list markers and ``<think>`` blocks
are removed: they are packaging, not content), then checked: not empty, within the limits, in the
sentence form of the category, not a copy of the record's output, not talking about "the given
answer", and in the language the policy asks for. The first failed check is the reason given back
to the teacher when it is asked again.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bonsai.records import REASONING_MAX_LINES, REASONING_MAX_WORDS, Record, category_group
from bonsai.teach.templates import language_name, reasoning_language, sentence_form
from bonsai.util.chars import CJK

if TYPE_CHECKING:
    from bonsai.curate.language import LanguageDetector

_CJK = CJK
_CJK_CHAR = re.compile(f"[{_CJK}]")
_CJK_PUNCT = re.compile("[\u3000-\u303f\uff00-\uffef]")
_WORDLIKE = re.compile(r"[^\W_]\S*")
_TOKEN = re.compile(f"[{_CJK}]|[^\\W_{_CJK}]+")
_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"^```[\w-]*\n(.*?)\n?```$", re.DOTALL)
_LABEL = re.compile(
    r"^\s*(?:\*\*)?(?:reasoning|thinking|answer)(?:\*\*)?\s*[:：]\s*(?:\*\*)?\s*", re.IGNORECASE
)
_BULLET = re.compile(r"^\s*(?:[-*•·]|\d{1,2}[.)])\s+")
_QUOTES = {'"': '"', "“": "”", "「": "」", "'": "'"}

_CONNECTOR = (
    r"(?:(?:first(?:ly)?|second(?:ly)?|third(?:ly)?|then|next|finally|lastly|also|after that"
    r"|afterwards|so|and|but|before (?:that|answering|writing|you start))\s*,?\s+)?"
)
_MODAL = (
    r"(?:\s+\w+)?\s+(?:should|must|need to|needs to|have to|has to|can|could|will|would"
    r"|might|may|ought to)\b"
)
_OPENERS = {
    "You should": re.compile(rf"^{_CONNECTOR}you{_MODAL}", re.IGNORECASE),
    "Creator should": re.compile(rf"^{_CONNECTOR}(?:the )?creator{_MODAL}", re.IGNORECASE),
}
# In languages where the form is not English words, a line is in form when it says what one
# should do; these markers are how that is said.
_NATIVE_FORM_MARKERS: dict[str, tuple[str, ...]] = {
    "ja": ("べき", "ましょう", "必要があ", "てください", "こと。", "ことです"),
    "zh": ("应该", "应当", "需要", "應該", "應當", "要"),
    "ko": ("해야", "하세요", "합니다", "필요"),
}
_MENTIONS_ANSWER = re.compile(
    r"\b(?:given|provided|above|example|reference|sample)\s+(?:answer|response|output)\b"
    r"|\b(?:answer|response)\s+(?:above|given|provided|shown)\b",
    re.IGNORECASE,
)


@dataclass
class Verdict:
    """The tidied answer and, when it cannot be used, why."""

    text: str
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None


def count_words(text: str) -> int:
    """Words in ``text``; Chinese and Japanese have no spaces, so two characters count as one."""
    cjk = len(_CJK_CHAR.findall(text))
    rest = _CJK_PUNCT.sub(" ", _CJK_CHAR.sub(" ", text))
    # One match per whitespace-separated token that has a letter or digit in it.
    words = len(_WORDLIKE.findall(rest))
    return words + math.ceil(cjk / 2)


def tidy(text: str | None) -> str:
    """The answer without packaging: think blocks, fences, a label, list markers, blank lines."""
    if not text:
        return ""
    text = _THINK.sub("", text).strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    text = _LABEL.sub("", text, count=1)
    lines = []
    for line in text.splitlines():
        line = _BULLET.sub("", line.strip()).strip()
        if len(line) >= 2 and _QUOTES.get(line[0]) == line[-1]:
            line = line[1:-1].strip()
        if line:
            lines.append(line)
    return "\n".join(lines)


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def _shingles(tokens: list[str], n: int = 3) -> set[tuple[str, ...]]:
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def copy_reason(reasoning: str, output: str) -> str | None:
    """Why ``reasoning`` is a copy or near-copy of ``output``, or None.

    Word 3-grams (characters for Chinese and Japanese) compared both ways: a reasoning made
    mostly of the output's phrases, or one that contains most of a longer output, restates the
    answer instead of showing the way to it.
    """
    body = "\n".join(_strip_opener(line) for line in reasoning.splitlines())
    mine, theirs = _tokens(body), _tokens(output)
    if not mine or not theirs:
        return None
    if mine == theirs:
        return "it is a copy of the record's output"
    own, other = _shingles(mine), _shingles(theirs)
    shared = len(own & other)
    if len(own) >= 3 and shared / len(own) >= 0.6:
        return "it mostly repeats the record's output; explain the way to it instead"
    if len(other) >= 6 and shared / len(other) >= 0.7:
        return "it restates the record's output; explain the way to it instead"
    return None


def _strip_opener(line: str) -> str:
    """The line without its "You should" (which every line shares with every other)."""
    for pattern in _OPENERS.values():
        line = pattern.sub("", line, count=1)
    return line


def form_reason(lines: list[str], record: Record, target: str | None) -> str | None:
    """Why the lines are not in the category's sentence form, or None.

    The first line and at least half of all lines must start with the form; other lines may
    continue a thought ("This keeps …").
    """
    form = sentence_form(record.category)
    if target in (None, "en"):
        own = _OPENERS[form]
        matching = [bool(own.match(line)) for line in lines]
        if matching[0] and 2 * sum(matching) >= len(lines):
            return None
        other = "Creator should" if form == "You should" else "You should"
        if any(_OPENERS[other].match(line) for line in lines):
            group = category_group(record.category)
            kind = "a creative" if group == "creative" else "a unique-answer"
            return f'its lines start with "{other}", but {kind} category needs "{form} …"'
        return f'each line should start with "{form} …"'
    markers = _NATIVE_FORM_MARKERS.get(target)
    if markers is None:
        return None  # no cheap way to check the form in this language
    matching = [any(m in line for m in markers) for line in lines]
    if 2 * sum(matching) >= len(lines):
        return None
    return f'most lines should say what to do, in the {language_name(target)} form of "{form}"'


def language_reason(text: str, target: str | None) -> str | None:
    """Why ``text`` is not in the language ``target``, or None (also when it cannot be told)."""
    if target is None:
        return None
    from bonsai.curate.language import LANGUAGES, english_shortcut, has_kana
    from bonsai.curate.language import script_language as by_script

    name = language_name(target)
    if target in ("ja", "zh", "ko"):
        found = by_script(text, han_hint=target if target in ("ja", "zh") else None)
        # Japanese prose always has kana; Han characters alone are Chinese.
        if found != target or (target == "ja" and not has_kana(text)):
            return f"it is not written in {name}"
        return None
    cjk_words = math.ceil(len(_CJK_CHAR.findall(text)) / 2)
    if cjk_words * 2 > count_words(text):  # mostly Chinese/Japanese/Korean
        return f"it is not written in {name}"
    if target == "en":
        ascii_only = re.sub(r"[^\x00-\x7f]+", " ", text)
        if english_shortcut(ascii_only):
            return None
    if target not in LANGUAGES:
        return None
    found = _detector().detect(text)
    if found is not None and found != target:
        return f"it is written in {language_name(found)}, not {name}"
    return None


_DETECTOR: LanguageDetector | None = None


def _detector() -> LanguageDetector:
    """lingua in low-accuracy mode: a reasoning is several sentences long, where trigrams alone
    are reliable, and it loads in a tenth of a second instead of seconds."""
    global _DETECTOR
    if _DETECTOR is None:
        from bonsai.curate.language import LanguageDetector

        _DETECTOR = LanguageDetector(low_accuracy=True)
    return _DETECTOR


def validate(answer: str | None, record: Record, policy: str) -> Verdict:
    """Tidy ``answer`` and check it as the reasoning of ``record`` under ``policy``."""
    text = tidy(answer)
    if not text:
        return Verdict(text, "the answer is empty")
    lines = text.splitlines()
    if len(lines) > REASONING_MAX_LINES:
        return Verdict(text, f"it has {len(lines)} lines; write at most {REASONING_MAX_LINES}")
    words = count_words(text)
    if words > REASONING_MAX_WORDS:
        return Verdict(text, f"it has {words} words; write at most {REASONING_MAX_WORDS}")
    copied = copy_reason(text, record.output)
    if copied:
        return Verdict(text, copied)
    target = reasoning_language(record, policy)
    if target in (None, "en") and _MENTIONS_ANSWER.search(text):
        return Verdict(
            text, 'it talks about "the given answer"; write advice for someone about to answer'
        )
    wrong_language = language_reason(text, target)
    if wrong_language:
        return Verdict(text, wrong_language)
    bad_form = form_reason(lines, record, target)
    if bad_form:
        return Verdict(text, bad_form)
    return Verdict(text)
