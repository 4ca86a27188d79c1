"""Prompt layouts as generation uses them: exactly the text a run was trained on.

The train stage owns the layouts (:mod:`bonsai.train.layouts`: ``render_prompt``,
``parse_completion``, ``stop_strings``); this is the narrow seam chat and serve use. A layout
here is the prompt for a record (everything up to where the model writes), how to read the
answer out of what the model wrote, and the text that ends an answer.
"""

from __future__ import annotations

from typing import Protocol

from bonsai.records import Record

SECTION_START = "\n### "


class PromptLayout(Protocol):
    name: str
    stop: tuple[str, ...]
    """Text that ends an answer in this layout (the model starting something new)."""

    def render(self, record: Record) -> str:
        """The prompt for ``record``, up to where the model writes."""
        ...

    def parse(self, completion: str) -> tuple[str | None, str]:
        """(reasoning or None, answer) from what the model wrote after the prompt."""
        ...

    def shows_category(self) -> bool:
        """Whether the prompt names the record's category (then a tuned run knows the mode)."""
        ...


class TrainLayout:
    """A layout of :mod:`bonsai.train.layouts`."""

    def __init__(self, name: str) -> None:
        from bonsai.train import layouts

        self.name = layouts.check_layout(name)
        self._layouts = layouts
        stop = tuple(layouts.stop_strings(name))
        probe = Record(id="p", instruction="q", category="question_to_question", reasoning="r")
        if self.render(probe).endswith("### Response:\n"):
            # The answer is the last section: any new section header ends it (the base model
            # likes to carry on with "### Answer:" and the like).
            stop = (*stop, SECTION_START)
        self.stop = tuple(dict.fromkeys(stop))
        self._shows_category = "question_to_question" in self.render(probe)

    def render(self, record: Record) -> str:
        return self._layouts.render_prompt(self.name, record)

    def parse(self, completion: str) -> tuple[str | None, str]:
        return self._layouts.parse_completion(self.name, completion)

    def shows_category(self) -> bool:
        return self._shows_category


def get_layout(name: str) -> PromptLayout:
    """The layout called ``name`` (a clear error names the known ones)."""
    return TrainLayout(name)
