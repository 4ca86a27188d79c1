"""Prompt layouts as evaluation uses them: exactly as chat does (:mod:`bonsai.generate.prompting`,
which reads the train stage's layouts), so that a model is asked in the layout it was trained
with, stops where chat stops, and its answer is parsed out the same way (for the `bonsai`
layout, the reasoning first and then the answer).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from bonsai.evaluate.scoring import Item
from bonsai.records import Record


@cache
def _layout(name: str) -> Any:
    from bonsai.generate.prompting import get_layout

    return get_layout(name)


def as_record(item: Item | Record) -> Record:
    if isinstance(item, Record):
        return item
    return Record(
        id=item.id,
        instruction=item.instruction,
        input=item.input,
        output=item.reference,
        category=item.category,
        language=item.language,
        reasoning=item.reasoning,
    )


def prompt(layout: str, item: Item | Record) -> str:
    """What the model is given for ``item``."""
    return _layout(layout).render(as_record(item))


def stops(layout: str) -> tuple[str, ...]:
    """Text that ends an answer in ``layout``."""
    return tuple(_layout(layout).stop)


def parse(layout: str, completion: str) -> tuple[str | None, str]:
    """(reasoning or None, answer) from what the model wrote after the prompt."""
    reasoning, answer = _layout(layout).parse(completion)
    if layout == "bonsai":
        # A bonsai-layout model that wrote no reasoning broke its limits: "" scores as such.
        reasoning = reasoning or ""
    return reasoning, answer
