"""Prompt layouts: how a record becomes the text the student reads and the text it must write.

One module below train, generate, chat and evaluate, so that the prompt a run was trained on is
exactly the prompt chat, serve and eval give it. A :class:`Layout` says what it shows and where
the reasoning goes; callers read those attributes instead of rendering a fake record.

The layouts (``--layout``):

* ``alpaca``: Alpaca's section headers (instruction, optional input, response). The long Alpaca
  preamble is left out: it costs about 30 tokens a record and teaches a small model nothing.
* ``bonsai-multitask`` (the default when records have a reasoning): the prompt names the record's
  category and language and the model writes the answer at once. The reasoning is a second
  training task on the same record (the prompt ends in ``### Reasoning:``), so the student learns
  from it without ever having to write it before an answer (distilling step-by-step).
* ``bonsai``: the model writes the reasoning first and then the response (the original layout;
  a 270M model's reasoning tends to derail its answer).
* ``bonsai-after``: the model writes the response, then the reasoning; generation stops after
  the response.
* ``bonsai-given``: the reasoning is part of the prompt; the model writes only the response.

Retrieved notes go in their own ``### Notes:`` section, numbered, with a short label (document
title and heading, never a file path): :func:`format_notes`. Training examples carry notes in
the same form (retrieval-aware training), so the prompt at chat time is one the student has seen.

A layout renders a record as a *prompt* (no loss) and a *target* (loss). The tokenizer's BOS goes
before the prompt and its EOS after the target, so the model learns where to stop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bonsai.errors import BonsaiError

BASE = "base"
"""The name of the untuned base model where a run id is expected."""

RESPONSE_HEADER = "### Response:\n"
REASONING_HEADER = "### Reasoning:\n"
NOTES_HEADER = "### Notes:\n"
SECTION_START = "\n### "
"""What starts a new section: generation stops there (the model began another section)."""
ANSWER_MARKER = RESPONSE_HEADER.strip()
"""What separates the reasoning from the answer in a reasoning-first completion."""

# Where a layout puts the reasoning.
NO_REASONING = "none"
REASONING_FIRST = "first"
REASONING_AFTER = "after"
REASONING_TASK = "task"
REASONING_GIVEN = "given"


@dataclass(frozen=True)
class Layout:
    """A prompt layout, described by what it shows and where the reasoning goes."""

    name: str
    shows_category: bool
    """Whether the prompt names the record's category and language (then a tuned run knows
    the mode, e.g. that it should answer with questions)."""
    reasoning: str
    """'none', 'first' (written before the answer), 'after' (written after it, not generated
    at chat time), 'task' (a second training task; never generated at chat time) or 'given'
    (part of the prompt)."""
    description: str

    @property
    def reasoning_first(self) -> bool:
        """Whether generation writes the reasoning before the answer."""
        return self.reasoning == REASONING_FIRST

    @property
    def needs(self) -> tuple[str, ...]:
        """Fields a record must have (non-empty) to be rendered."""
        if not self.shows_category:
            return ("instruction", "output")
        if self.reasoning in (REASONING_FIRST, REASONING_GIVEN):
            return ("instruction", "output", "category", "language", "reasoning")
        return ("instruction", "output", "category", "language")

    @property
    def stop(self) -> tuple[str, ...]:
        """Text at which generation stops besides EOS."""
        stops = [SECTION_START + "Instruction:", SECTION_START + "Category:"]
        if not self.reasoning_first:
            # The answer is the last thing the model writes: any new section ends it.
            stops.append(SECTION_START)
        return tuple(stops)


_LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        Layout("alpaca", False, NO_REASONING, "instruction, input, response"),
        Layout(
            "bonsai-multitask",
            True,
            REASONING_TASK,
            "category and language named; the answer at once; the reasoning a second task",
        ),
        Layout("bonsai", True, REASONING_FIRST, "the reasoning first, then the answer"),
        Layout("bonsai-after", True, REASONING_AFTER, "the answer first, then the reasoning"),
        Layout("bonsai-given", True, REASONING_GIVEN, "the reasoning given in the prompt"),
    )
}

LAYOUTS: tuple[str, ...] = tuple(_LAYOUTS)
"""The layout names ``--layout`` accepts."""

DEFAULT_REASONING_LAYOUT = "bonsai-multitask"
"""The layout a run takes when most of its records have a reasoning (see docs/training.md for
the measurement that chose it)."""


@dataclass(frozen=True)
class Rendered:
    """A record in a layout: what the model reads and what it must write."""

    prompt: str
    """Text the model is given (carries no loss). Ends where the model starts writing."""
    target: str
    """Text the model must write (carries the loss); the EOS token follows it."""
    task: str = "answer"
    """'answer', or 'reasoning' for the second task of ``bonsai-multitask``."""


def get_layout(name: str) -> Layout:
    """The layout called ``name``; a clear error lists the known ones."""
    layout = _LAYOUTS.get(name)
    if layout is None:
        raise BonsaiError(
            f"unknown layout '{name}'", field="layout", hint=f"choose one of: {', '.join(LAYOUTS)}"
        )
    return layout


def check_layout(name: str) -> str:
    """``name`` if it is a known layout; otherwise a BonsaiError that lists the known ones."""
    return get_layout(name).name


def _get(record: Any, name: str) -> str:
    """A text field of a Record, a dict or any object with that attribute ('' when absent)."""
    value = record.get(name) if isinstance(record, Mapping) else getattr(record, name, None)
    return "" if value is None else str(value).strip()


def needs(layout: str) -> tuple[str, ...]:
    """Fields a record must have (non-empty) to be rendered in ``layout``."""
    return get_layout(layout).needs


def missing_fields(layout: str, record: Any) -> list[str]:
    """The fields ``layout`` needs that ``record`` lacks (empty list: it can be rendered)."""
    return [name for name in needs(layout) if not _get(record, name)]


def format_notes(passages: Sequence[tuple[str, str]]) -> str:
    """Numbered notes for a prompt: ``[n] label`` then the text, blank lines between.

    ``passages`` are (label, text) pairs; a label is a document title and heading in words
    ("Care log > Watering"), never a file path, or "" for a passage without one.
    """
    blocks = []
    for number, (label, text) in enumerate(passages, 1):
        head = f"[{number}] {label.strip()}".rstrip()
        blocks.append(f"{head}\n{text.strip()}")
    return "\n\n".join(blocks)


SENTENCE_ENDS = ("。", ". ", "！", "？", "! ", "? ", "\n")


def cut_at_sentence(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters at its last sentence end, or hard at the limit when
    the last sentence end would keep less than a third."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    end = max(head.rfind(mark) for mark in SENTENCE_ENDS)
    return head[: end + 1].strip() if end > limit // 3 else head.strip()


def _header(record: Any) -> str:
    return f"### Category: {_get(record, 'category')}\n### Language: {_get(record, 'language')}\n\n"


def _context(record: Any, notes: str) -> str:
    text = f"{NOTES_HEADER}{notes.strip()}\n\n" if notes.strip() else ""
    text += f"### Instruction:\n{_get(record, 'instruction')}\n\n"
    given = _get(record, "input")
    if given:
        text += f"### Input:\n{given}\n\n"
    return text


def render_prompt(layout: str, record: Any, notes: str = "") -> str:
    """The prompt of ``record`` in ``layout``: what the model reads before it writes.

    ``record`` is a :class:`~bonsai.records.Record`, a dict, or any object with the fields
    ``instruction``, ``input`` and (for the bonsai layouts) ``category``, ``language`` and, for
    ``bonsai-given``, ``reasoning``. ``notes`` is the :func:`format_notes` text of retrieved
    notes ("" for none). No BOS is added: the tokenizer does that when it encodes the prompt.
    """
    shape = get_layout(layout)
    prompt = (_header(record) if shape.shows_category else "") + _context(record, notes)
    if shape.reasoning == REASONING_FIRST:
        return prompt + REASONING_HEADER
    if shape.reasoning == REASONING_GIVEN:
        prompt += f"{REASONING_HEADER}{_get(record, 'reasoning')}\n\n"
    return prompt + RESPONSE_HEADER


def render_target(layout: str, record: Any) -> str:
    """What the model must write for ``record`` in ``layout`` (without the EOS token)."""
    shape = get_layout(layout)
    output, reasoning = _get(record, "output"), _get(record, "reasoning")
    if shape.reasoning == REASONING_FIRST:
        return f"{reasoning}\n\n{RESPONSE_HEADER}{output}"
    if shape.reasoning == REASONING_AFTER and reasoning:
        return f"{output}\n\n{REASONING_HEADER}{reasoning}"
    return output


def render(layout: str, record: Any, notes: str = "") -> Rendered:
    """Prompt and target of ``record`` in ``layout`` (the answer task)."""
    return Rendered(render_prompt(layout, record, notes), render_target(layout, record))


def render_tasks(layout: str, record: Any, notes: str = "") -> list[Rendered]:
    """Every training example of ``record``: the answer, and for ``bonsai-multitask`` the
    reasoning as a second task when the record has one."""
    examples = [render(layout, record, notes)]
    reasoning = _get(record, "reasoning")
    if get_layout(layout).reasoning == REASONING_TASK and reasoning:
        shape = get_layout(layout)
        prompt = (_header(record) if shape.shows_category else "") + _context(record, notes)
        examples.append(Rendered(prompt + REASONING_HEADER, reasoning, task="reasoning"))
    return examples


def stop_strings(layout: str) -> list[str]:
    """Strings at which generation should stop besides EOS."""
    return list(get_layout(layout).stop)


def _cut_at_new_record(text: str) -> str:
    for stop in (SECTION_START + "Instruction:", SECTION_START + "Category:", "### Instruction:"):
        index = text.find(stop)
        if index >= 0:
            text = text[:index]
    return text


def parse_completion(layout: str, text: str) -> tuple[str | None, str]:
    """Split what the model wrote after :func:`render_prompt` into (reasoning, answer).

    Reasoning-first: the reasoning is the text before ``### Response:``; if the model never wrote
    that header, everything it wrote counts as the answer and the reasoning is None. Otherwise the
    answer is what it wrote up to the next section (a reasoning written after the answer is
    returned as the reasoning). Anything after the start of a new record is dropped.
    """
    shape = get_layout(layout)
    text = _cut_at_new_record(text)
    if shape.reasoning_first:
        head, marker, answer = text.partition(ANSWER_MARKER)
        if not marker:
            return None, text.strip()
        return head.strip() or None, answer.strip()
    answer, marker, after = text.partition(REASONING_HEADER.strip())
    if marker and shape.reasoning == REASONING_AFTER:
        return after.strip() or None, answer.strip()
    return None, answer.strip() if marker else text.strip()
