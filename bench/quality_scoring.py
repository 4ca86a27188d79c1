"""Held-out questions of a garden, and how a reply to each is scored.

A question file is JSONL, one question per line (bench/gardens/README.md describes the fields).
Each question has a *kind*, from its category:

- `open_qa` → *facts*: any accepted string is in the reply (normalised);
- `closed_qa` → *closed*: the same, on a question that comes with a text to read;
- `classification` → *labels*: the reply, or its first sentence, is exactly the expected label;
- `translation`: the reply is in `target_language` (the project's language detector), and its
  chrF against the reference translation;
- `question_to_question` → *q2q*: the reply asks at least two questions (`?` or `？`).

Every reply is also checked for a loop (a span repeated back to back, the small model's typical
failure) with :func:`bonsai.evaluate.metrics.is_looping`.

Normalisation: NFKC (full width → half width), case folded, punctuation and spaces dropped, so
"4.2 kg", "4.2kg" and "４．２ｋｇ" match. Numbers are matched whole: "4.2" is not "42", "13" is
not found in "2013".
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import mean
from typing import Any

from bonsai.evaluate.metrics import copies_notes, is_looping, reads_back, sentence_chrf

KINDS = {
    "open_qa": "facts",
    "closed_qa": "closed",
    "classification": "labels",
    "translation": "translation",
    "question_to_question": "q2q",
}
"""Category of a question → the line of the result it counts in."""

TARGET_LANGUAGES = ("en", "ja", "zh")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_FIRST_SENTENCE = re.compile(r"[.。!！?？\n:：;；,，、]")


@dataclass
class Question:
    """One held-out question with what counts as a right reply."""

    id: str
    category: str
    question: str
    input: str = ""
    """A text the question is about (closed_qa, some classifications); sent after the question."""
    accepted: list[str] = field(default_factory=list)
    """Accepted answers (any one is enough); the label for classification; reference
    translations for translation; example sharper questions for q2q (not scored)."""
    labels: list[str] = field(default_factory=list)
    """The labels offered (classification)."""
    target_language: str = ""
    """The language the reply must be in (translation)."""
    language: str = ""
    """The language the question is asked in."""
    source: str = ""
    """Where the answer can be found: a note file or record ids (for people, not scored)."""

    @property
    def kind(self) -> str:
        return KINDS[self.category]

    def message(self) -> str:
        """The user message sent to the model: the question, then the text it is about."""
        return f"{self.question}\n\n{self.input}" if self.input.strip() else self.question


class QuestionError(ValueError):
    """A question file that is not well formed; the message names the file and line."""


def load_questions(path: str | Path) -> list[Question]:
    """Read and check a question file; raises :class:`QuestionError` naming file and line."""
    path = Path(path)
    questions: list[Question] = []
    seen: set[str] = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise QuestionError(f"{where}: not JSON ({exc.msg})") from None
        question = _question(data, where)
        if question.id in seen:
            raise QuestionError(f"{where}: id '{question.id}' appears twice")
        seen.add(question.id)
        questions.append(question)
    if not questions:
        raise QuestionError(f"{path}: no questions")
    return questions


def _question(data: Any, where: str) -> Question:
    if not isinstance(data, dict):
        raise QuestionError(f"{where}: not a JSON object")
    known = set(Question.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise QuestionError(f"{where}: unknown field(s) {', '.join(unknown)}")
    for name in ("id", "category", "question"):
        if not isinstance(data.get(name), str) or not data[name].strip():
            raise QuestionError(f"{where}: '{name}' must be a non-empty string")
    for name in ("accepted", "labels"):
        value = data.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise QuestionError(f"{where}: '{name}' must be a list of non-empty strings")
    q = Question(**data)
    if q.category not in KINDS:
        raise QuestionError(
            f"{where}: category '{q.category}' is not one of {', '.join(KINDS)}"
            " (brainstorming and creative have no single right reply to check)"
        )
    if q.kind in ("facts", "closed", "labels", "translation") and not q.accepted:
        raise QuestionError(f"{where}: '{q.category}' needs at least one 'accepted' answer")
    if q.kind == "closed" and not q.input.strip():
        raise QuestionError(f"{where}: closed_qa needs the text to read in 'input'")
    if q.kind == "labels":
        if len(q.labels) < 2:
            raise QuestionError(f"{where}: classification needs 'labels' (two or more)")
        if len(q.accepted) != 1 or normalise(q.accepted[0]) not in map(normalise, q.labels):
            raise QuestionError(f"{where}: 'accepted' must be exactly one of the 'labels'")
    if q.kind == "translation" and q.target_language not in TARGET_LANGUAGES:
        raise QuestionError(
            f"{where}: translation needs 'target_language', one of {', '.join(TARGET_LANGUAGES)}"
        )
    return q


# -- scoring one reply ----------------------------------------------------------------------------


def normalise(text: str) -> str:
    """NFKC, case folded, without punctuation or spaces. Numbers keep their edges: a decimal
    point between digits stays, a thousands comma goes ("8,800" is "8800"), and any other gap
    between two digits becomes one space ("10 20" is not "1020")."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _THOUSANDS.sub("", text)
    out: list[str] = []
    gap = False
    for i, ch in enumerate(text):
        decimal = (
            ch == "." and 0 < i < len(text) - 1 and text[i - 1].isdigit() and text[i + 1].isdigit()
        )
        if not decimal and unicodedata.category(ch)[0] in ("P", "S", "Z", "C"):
            gap = True
            continue
        if gap and out and out[-1].isdigit() and ch.isdigit():
            out.append(" ")
        out.append(ch)
        gap = False
    return "".join(out)


def _found(needle: str, haystack: str) -> bool:
    """``needle`` occurs in ``haystack``, and a number in it is not part of a longer number
    ("13" is not found in "2013", nor "5kg" in "2.5kg")."""
    start = haystack.find(needle)
    while start != -1:
        end = start + len(needle)
        before = haystack[start - 1] if start else ""
        after = haystack[end] if end < len(haystack) else ""
        if not (needle[0].isdigit() and (before.isdigit() or before == ".")) and not (
            needle[-1].isdigit() and (after.isdigit() or after == ".")
        ):
            return True
        start = haystack.find(needle, start + 1)
    return False


def has_accepted(reply: str, accepted: Iterable[str]) -> bool:
    """Any accepted answer occurs in the reply (after :func:`normalise`, numbers whole)."""
    said = normalise(reply)
    return any(_found(form, said) for form in map(normalise, accepted) if form)


def reply_label(reply: str, labels: Sequence[str]) -> str | None:
    """The offered label the reply gives: the whole reply, or its first sentence or clause, equal
    to one label after normalisation ("Toxic." and "Toxic. Lilies …" give "Toxic"; "I think it
    is toxic" gives none)."""
    by_form = {normalise(label): label for label in labels}
    whole = normalise(reply)
    if whole in by_form:
        return by_form[whole]
    first = _FIRST_SENTENCE.split(reply.strip(), maxsplit=1)[0]
    return by_form.get(normalise(first))


def question_count(reply: str) -> int:
    """Question marks in the reply, half or full width."""
    return reply.count("?") + reply.count("？")


def source_found(question: Question, sources: Sequence[str] | None) -> bool | None:
    """Whether retrieval gave the model the note the answer is in (None when the question names
    no note, or the reply did not say what was retrieved): it tells a retrieval miss from a
    model that had the note and did not use it."""
    if sources is None or not question.source.startswith("notes/"):
        return None
    name = question.source.removeprefix("notes/")
    return any(Path(source).name == name for source in sources)


def in_language(reply: str, language: str, detect: Callable[[str], str | None]) -> bool:
    return bool(reply.strip()) and detect(reply) == language


def default_detect(text: str) -> str | None:
    """The project's language detector (script rules first, then lingua)."""
    from bonsai.curate.language import default_detector

    return default_detector().detect(text)


@dataclass
class Score:
    """How one reply did."""

    id: str
    kind: str
    correct: bool | None
    """Facts, closed, labels: found/right. Translation: in the target language. q2q: ≥2
    questions."""
    loop: bool
    echo: bool = False
    """The reply copies the retrieved-notes block ("[1] notes/x.md > …") instead of answering
    (:func:`bonsai.evaluate.metrics.copies_notes`): a fact found in it was read out."""
    read_back: bool = False
    """The reply repeats the text given with the question (:func:`reads_back`)."""
    chrf: float | None = None
    label: str | None = None
    questions: int | None = None
    note_retrieved: bool | None = None
    """The note the answer is in was among the retrieved ones (:func:`source_found`)."""
    answer_in_prompt: bool | None = None
    """Facts and closed: an accepted answer was in the prompt the model was given (outside the
    question itself), i.e. retrieval or the given text put it within reach."""
    category_guessed: bool | None = None
    """Chat took the question for the category it has."""

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def score_reply(
    question: Question,
    reply: str,
    *,
    detect: Callable[[str], str | None] = default_detect,
    sources: Sequence[str] | None = None,
    prompt: str | None = None,
    category: str | None = None,
) -> Score:
    """Score one reply to one question. What chat did, where known, adds diagnostics:
    ``sources`` (files retrieval gave the model), ``prompt`` (the whole prompt it was given) and
    ``category`` (the category chat took the question for)."""
    score = _score(question, reply, detect)
    score.note_retrieved = source_found(question, sources)
    if prompt is not None and score.kind in ("facts", "closed"):
        context = prompt.replace(question.question, " ")
        score.answer_in_prompt = has_accepted(context, question.accepted)
    if category is not None:
        score.category_guessed = category == question.category
    return score


def _score(question: Question, reply: str, detect: Callable[[str], str | None]) -> Score:
    kind = question.kind
    loop, echo = is_looping(reply), copies_notes(reply)
    if kind in ("facts", "closed"):
        right = has_accepted(reply, question.accepted)
        read_back = reads_back(reply, question.input)
        return Score(question.id, kind, right, loop, echo, read_back=read_back)
    if kind == "labels":
        label = reply_label(reply, question.labels)
        right = label is not None and normalise(label) == normalise(question.accepted[0])
        return Score(question.id, kind, right, loop, echo, label=label)
    if kind == "translation":
        right = in_language(reply, question.target_language, detect)
        best = max(sentence_chrf(reply, ref) for ref in question.accepted)
        return Score(question.id, kind, right, loop, echo, chrf=round(best, 2))
    count = question_count(reply)
    return Score(question.id, kind, count >= 2, loop, echo, questions=count)


# -- one model's result ---------------------------------------------------------------------------

RESULT_FIELDS = ("facts", "closed", "labels", "translation_lang", "chrf", "q2q", "loops")
DIAGNOSTICS = (
    "facts_not_copied",
    "closed_not_copied",
    "echoes",
    "note_retrieved",
    "answer_in_prompt",
    "category_guessed",
)
"""Shown under the RESULT fields: why a line is what it is."""


def summarise(scores: Sequence[Score]) -> dict[str, Any]:
    """Counts per kind, ``{"facts": [right, asked], …}``; ``chrf`` is the mean sentence chrF of
    the translations, ``loops`` ``[looping replies, all replies]``, ``echoes`` the same for
    replies that copy the retrieved-notes block, ``facts_not_copied`` and ``closed_not_copied``
    the right replies that neither copy the notes block nor read the given text back,
    ``note_retrieved`` ``[questions whose note was retrieved, questions that name a note]``,
    ``answer_in_prompt`` and ``category_guessed`` likewise (diagnostics for the table, not in
    the RESULT line)."""
    out: dict[str, Any] = {}
    for kind, name in (
        ("facts", "facts"),
        ("closed", "closed"),
        ("labels", "labels"),
        ("translation", "translation_lang"),
        ("q2q", "q2q"),
    ):
        mine = [s for s in scores if s.kind == kind]
        out[name] = [sum(bool(s.correct) for s in mine), len(mine)]
    chrfs = [s.chrf for s in scores if s.chrf is not None]
    out["chrf"] = round(mean(chrfs), 1) if chrfs else None
    out["loops"] = [sum(s.loop for s in scores), len(scores)]
    for kind in ("facts", "closed"):
        mine = [s for s in scores if s.kind == kind]
        answered = [s for s in mine if s.correct and not (s.echo or s.read_back)]
        out[f"{kind}_not_copied"] = [len(answered), len(mine)]
    out["echoes"] = [sum(s.echo for s in scores), len(scores)]
    looked_up = [s for s in scores if s.note_retrieved is not None]
    out["note_retrieved"] = [sum(bool(s.note_retrieved) for s in looked_up), len(looked_up)]
    for name in ("answer_in_prompt", "category_guessed"):
        known = [getattr(s, name) for s in scores if getattr(s, name) is not None]
        out[name] = [sum(known), len(known)]
    return out


def result_line(summary: dict[str, Any], model: str) -> str:
    """``RESULT facts=2/15 closed=… loops=0/32 model=tuned``: one line a script can grep."""
    parts = []
    for name in RESULT_FIELDS:
        value = summary.get(name)
        if isinstance(value, list):
            parts.append(f"{name}={value[0]}/{value[1]}")
        else:
            parts.append(f"{name}={'-' if value is None else value}")
    return "RESULT " + " ".join(parts) + f" model={model}"
