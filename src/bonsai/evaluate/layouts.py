"""Prompt layouts as evaluation uses them: exactly as chat does (:mod:`bonsai.generate.prompting`,
which reads the train stage's layouts), so that a model stops where chat stops and its reasoning
is told apart from its answer the same way.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from bonsai.records import Record


@cache
def _layout(name: str) -> Any:
    from bonsai.generate.prompting import get_layout

    return get_layout(name)


def stops(layout: str) -> tuple[str, ...]:
    """Text that ends an answer in ``layout``."""
    return tuple(_layout(layout).stop)


def reasoning_first(layout: str) -> bool:
    """Whether a model in ``layout`` writes its reasoning before the answer (chat's rule: the
    prompt does not end at the answer marker)."""
    from bonsai.chat.session import ANSWER_MARKER

    probe = Record(id="probe", instruction="q", category="open_qa", language="en")
    return not _layout(layout).render(probe).rstrip().endswith(ANSWER_MARKER)
