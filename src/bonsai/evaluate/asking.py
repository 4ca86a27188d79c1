"""Asking every item the way chat does: evaluation measures what `bonsai chat` and `bonsai serve`
give.

Each model answers in a :class:`~bonsai.chat.session.ChatSession`, so the prompt is built, the
garden's notes and records are retrieved and trimmed to fit, the answer is stopped and parsed
exactly as in chat, only greedily. An item becomes what a person would type
(:attr:`~bonsai.evaluate.scoring.Item.question`: the instruction, then the text it is about), in
question-to-question mode for that category and answer mode for the others; chat guesses the
category and the language from the question, as it does for a person.

Two things differ from a person's chat, on purpose:

- the turns are logged to a scratch database, not to the garden's chat log: evaluation is not
  conversation, and `bonsai grow` must not learn from it;
- when the garden's records are in its knowledge base, retrieval leaves out the evaluated
  record's own chunk (``dataset:NAME#ID``): it holds the very answer being measured.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from bonsai.evaluate.results import Answer
from bonsai.evaluate.scoring import Item

if TYPE_CHECKING:
    import sqlite3

    from bonsai.chat.session import ChatSession
    from bonsai.generate import GenerateArgs
    from bonsai.generate.loading import RunChoice
    from bonsai.rag import Hit

Advance = Callable[[int], None]

DATASET_SOURCE = "dataset:"
"""How a record's chunk is cited in the knowledge base (``dataset:NAME#RECORD_ID``)."""


class EvalRetriever:
    """Chat's retriever over the garden's knowledge base, with two additions: a question's hits
    are looked up once for all the models compared (they do not depend on the model), and the
    chunk of the record being asked (:attr:`leave_out`) is never among them."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        from bonsai.chat.session import garden_retriever

        self._retrieve = garden_retriever(conn)
        self._cache: dict[tuple[str, int], list[Hit]] = {}
        self.leave_out: str | None = None
        """Id of the record being asked (None for a probe)."""
        self.left_out: set[str] = set()
        """Records whose own chunk was retrieved for them and left out."""

    def __call__(self, query: str, k: int) -> list[Hit]:
        # One more than asked, so that leaving a chunk out still leaves k (the fused ranking's
        # first k are the same whatever the depth).
        key = (query, k + 1)
        if key not in self._cache:
            self._cache[key] = self._retrieve(query, k + 1)
        hits = self._cache[key]
        kept = [hit for hit in hits if not self._is_left_out(hit)]
        if len(kept) < len(hits) and self.leave_out is not None:
            self.left_out.add(self.leave_out)
        return kept[:k]

    def _is_left_out(self, hit: Hit) -> bool:
        if self.leave_out is None or not hit.source.startswith(DATASET_SOURCE):
            return False
        return hit.source.rsplit("#", 1)[-1] == self.leave_out


def chat_mode(item: Item) -> str:
    """The chat mode a person would ask ``item`` in."""
    from bonsai.chat.prompts import ANSWER, Q2Q

    return Q2Q if item.category == Q2Q else ANSWER


def open_eval_session(
    choice: RunChoice, retriever: EvalRetriever, *, rag: bool, generate: GenerateArgs
) -> ChatSession:
    """A chat session on the model ``choice`` names, logging to a scratch database."""
    from bonsai.chat.session import ChatArgs, ChatSession
    from bonsai.db import connect
    from bonsai.evaluate.engine import quiet_deprecations
    from bonsai.generate.loading import load_generator

    with quiet_deprecations():
        loaded = load_generator(choice)
    return ChatSession(
        connect(":memory:"),
        loaded.engine,
        loaded.layout,
        run_id=choice.id,
        base_model=choice.base_model,
        args=ChatArgs(rag=rag, generate=generate),
        retriever=retriever,
        client="eval",
    )


def ask_all(
    session: Any,
    items: Sequence[Item],
    retriever: EvalRetriever,
    *,
    reasoning_expected: bool,
    advance: Advance | None = None,
) -> list[Answer]:
    """Every item asked in ``session``; ``reasoning_expected``: the layout's model writes its
    reasoning first (then a missing one scores as such, not as 'no reasoning asked')."""
    answers = []
    for item in items:
        retriever.leave_out = item.id if item.source == "val" else None
        turn = session.ask(item.question, mode=chat_mode(item))
        log = turn.log
        reasoning = log.reasoning
        if reasoning_expected:
            reasoning = reasoning or ""
        answers.append(
            Answer(
                text=log.answer,
                reasoning=reasoning,
                raw=turn.generation.text,
                finish=log.finish_reason,
                prompt=log.rendered_prompt,
                chat={
                    "mode": log.mode,
                    "category": log.category,
                    "language": log.language,
                    "notes": [ref["citation"] for ref in log.retrieved],
                },
            )
        )
        if advance:
            advance(1)
    retriever.leave_out = None
    return answers
