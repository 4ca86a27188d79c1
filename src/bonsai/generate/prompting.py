"""Prompt layouts as generation uses them: exactly the text a run was trained on.

:mod:`bonsai.layouts` owns the layouts (``render_prompt``, ``parse_completion``, the stop
strings); this is the narrow seam chat, serve and eval use. A layout here is the prompt for a
record and its notes (everything up to where the model writes), how to read the answer out of
what the model wrote, and the text that ends an answer.
"""

from __future__ import annotations

from typing import Protocol

from bonsai import layouts
from bonsai.records import Record

SECTION_START = layouts.SECTION_START


class PromptLayout(Protocol):
    name: str
    stop: tuple[str, ...]
    """Text that ends an answer in this layout (the model starting something new)."""
    reasoning_first: bool
    """Whether the model writes its reasoning before the answer."""

    def render(self, record: Record, notes: str = "") -> str:
        """The prompt for ``record`` with ``notes`` (:func:`bonsai.layouts.format_notes`)."""
        ...

    def parse(self, completion: str) -> tuple[str | None, str]:
        """(reasoning or None, answer) from what the model wrote after the prompt."""
        ...

    def shows_category(self) -> bool:
        """Whether the prompt names the record's category (then a tuned run knows the mode)."""
        ...


class TrainLayout:
    """A layout of :mod:`bonsai.layouts`."""

    def __init__(self, name: str) -> None:
        self._layout = layouts.get_layout(name)
        self.name = self._layout.name
        self.stop = self._layout.stop
        self.reasoning_first = self._layout.reasoning_first

    def render(self, record: Record, notes: str = "") -> str:
        return layouts.render_prompt(self.name, record, notes)

    def parse(self, completion: str) -> tuple[str | None, str]:
        return layouts.parse_completion(self.name, completion)

    def shows_category(self) -> bool:
        return self._layout.shows_category


def get_layout(name: str) -> PromptLayout:
    """The layout called ``name`` (a clear error names the known ones)."""
    return TrainLayout(name)
