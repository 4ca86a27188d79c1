"""Prompt layouts: how a record becomes the text the student reads and the text it must write.

Three layouts, chosen with ``--layout``:

* ``alpaca``: Alpaca's section headers (instruction, optional input, response). The long Alpaca
  preamble ("Below is an instruction that describes a task...") is left out: it costs about 30
  tokens per record on every step and teaches a small model nothing.
* ``bonsai``: the prompt also names the record's category and language; the model writes the
  reasoning first and then the response. At inference the reasoning is generated too.
* ``bonsai-given``: the reasoning is part of the prompt; the model writes only the response.

A layout renders a record as a *prompt* (no loss) and a *target* (loss). The tokenizer's BOS goes
before the prompt and its EOS after the target, so the model learns where to stop. The chat and
generation code reuse :func:`render_prompt`, :func:`parse_completion` and :func:`stop_strings`
so that inference prompts are exactly the training prompts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bonsai.errors import BonsaiError

LAYOUTS: tuple[str, ...] = ("alpaca", "bonsai", "bonsai-given")
"""The layout names ``--layout`` accepts."""

RESPONSE_HEADER = "### Response:\n"
REASONING_HEADER = "### Reasoning:\n"
SECTION_START = "\n### "
"""What starts a new section: generation should stop there (the model began another record)."""


@dataclass(frozen=True)
class Rendered:
    """A record in a layout: what the model reads and what it must write."""

    prompt: str
    """Text the model is given (carries no loss). Ends where the model starts writing."""
    target: str
    """Text the model must write (carries the loss); the EOS token follows it."""


def check_layout(layout: str) -> str:
    """``layout`` if it is known; otherwise a BonsaiError that lists the known ones."""
    if layout not in LAYOUTS:
        raise BonsaiError(
            f"unknown layout '{layout}'",
            field="layout",
            hint=f"choose one of: {', '.join(LAYOUTS)}",
        )
    return layout


def _get(record: Any, name: str) -> str:
    """A text field of a Record, a dict or any object with that attribute ('' when absent)."""
    value = record.get(name) if isinstance(record, Mapping) else getattr(record, name, None)
    return "" if value is None else str(value).strip()


def needs(layout: str) -> tuple[str, ...]:
    """Fields a record must have (non-empty) to be rendered in ``layout``."""
    check_layout(layout)
    if layout == "alpaca":
        return ("instruction", "output")
    return ("instruction", "output", "category", "language", "reasoning")


def missing_fields(layout: str, record: Any) -> list[str]:
    """The fields ``layout`` needs that ``record`` lacks (empty list: it can be rendered)."""
    return [name for name in needs(layout) if not _get(record, name)]


def _context(record: Any) -> str:
    instruction = _get(record, "instruction")
    given = _get(record, "input")
    text = f"### Instruction:\n{instruction}\n\n"
    if given:
        text += f"### Input:\n{given}\n\n"
    return text


def _header(record: Any) -> str:
    return f"### Category: {_get(record, 'category')}\n### Language: {_get(record, 'language')}\n\n"


def render_prompt(layout: str, record: Any) -> str:
    """The prompt of ``record`` in ``layout``: what the model reads before it writes.

    ``record`` is a :class:`~bonsai.records.Record`, a dict, or any object with the fields
    ``instruction``, ``input`` and (for the bonsai layouts) ``category``, ``language`` and, for
    ``bonsai-given``, ``reasoning``. ``output`` is not needed. No BOS is added: the tokenizer does
    that when it encodes the prompt.
    """
    check_layout(layout)
    if layout == "alpaca":
        return _context(record) + RESPONSE_HEADER
    prompt = _header(record) + _context(record) + REASONING_HEADER
    if layout == "bonsai-given":
        prompt += f"{_get(record, 'reasoning')}\n\n{RESPONSE_HEADER}"
    return prompt


def render_target(layout: str, record: Any) -> str:
    """What the model must write for ``record`` in ``layout`` (without the EOS token)."""
    check_layout(layout)
    output = _get(record, "output")
    if layout == "bonsai":
        return f"{_get(record, 'reasoning')}\n\n{RESPONSE_HEADER}{output}"
    return output


def render(layout: str, record: Any) -> Rendered:
    """Prompt and target of ``record`` in ``layout``."""
    return Rendered(render_prompt(layout, record), render_target(layout, record))


def stop_strings(layout: str) -> list[str]:
    """Strings at which generation should stop besides EOS: the start of a new section."""
    check_layout(layout)
    return [SECTION_START + "Instruction:", SECTION_START + "Category:"]


def _cut_at_new_record(text: str) -> str:
    for stop in (SECTION_START + "Instruction:", SECTION_START + "Category:", "### Instruction:"):
        index = text.find(stop)
        if index >= 0:
            text = text[:index]
    return text


def parse_completion(layout: str, text: str) -> tuple[str | None, str]:
    """Split what the model wrote after :func:`render_prompt` into (reasoning, answer).

    For ``bonsai`` the reasoning is the text before ``### Response:``; if the model never wrote
    that header, everything it wrote counts as the answer and the reasoning is None. The other
    layouts have no reasoning to parse. Anything after the start of a new record is dropped.
    """
    check_layout(layout)
    text = _cut_at_new_record(text)
    if layout != "bonsai":
        return None, text.strip()
    head, marker, answer = text.partition(RESPONSE_HEADER.strip())
    if not marker:
        return None, text.strip()
    return head.strip() or None, answer.strip()
