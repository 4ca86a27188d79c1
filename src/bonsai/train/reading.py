"""Reading records: questions the keeper's notes answer, made from the notes themselves.

Chat answers a keeper's questions from the notes it retrieves, but a garden's records rarely ask
what the notes say, so nothing in training shows the student how to find the sentence that
answers and say it. Reading records try to (``bonsai train --reading on``; off by default, as
they did not measurably help: docs/training.md has the table). For each section of a note, one
statement (a sentence, a list item or a table row) is picked that holds a term no other
statement of the notes holds; the record asks what the notes say about that term, in the
statement's language, and answers with the statement. Its prompt carries the notes retrieved
for that question, exactly as chat would retrieve and show them (so retrieval sometimes misses,
as it does in chat, and the record then teaches the fact itself).

Nothing here reads the keeper's questions: the records come from the notes alone, are made
again for every run from the notes as they are then, and are not stored in the dataset.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bonsai.rag.statements import split_statements, statement_language
from bonsai.records import Record
from bonsai.teach.compose import term_candidates

if TYPE_CHECKING:
    from bonsai.rag import Hit

CATEGORY = "open_qa"
QUESTIONS = {
    "en": "What do my notes say about {term}?",
    "ja": "{term}について、メモには何と書いてある？",
    "zh": "关于{term}，我的笔记里写了什么？",
}
REASONINGS = {
    "en": "My notes on {section} say it.",
    "ja": "メモの「{section}」に書いてある。",
    "zh": "笔记“{section}”里写着。",
}


@dataclass
class Statement:
    text: str
    language: str
    terms: list[str] = field(default_factory=list)


@dataclass
class Reading:
    """The reading records of a run and the notes each prompt carries."""

    records: list[Record] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)
    sections: int = 0
    """Note sections the records were picked from."""


def statements(text: str) -> list[Statement]:
    """The statements of a note section that are long enough to ask about."""
    return [
        Statement(sentence, statement_language(sentence), candidate_terms(sentence))
        for sentence in split_statements(text)
    ]


def candidate_terms(text: str) -> list[str]:
    """The words a question could name (:func:`bonsai.teach.compose.term_candidates`), the best
    first."""
    ranked = sorted(term_candidates(text), key=lambda c: (-c[0], c[1]))
    return list(dict.fromkeys(term for _, _, term in ranked))


def unique_term(statement: Statement, frequency: Counter[str]) -> str | None:
    """The best of the statement's terms that no other statement holds."""
    return next((t for t in statement.terms if frequency[t.lower()] == 1), None)


def term_frequency(all_statements: list[Statement]) -> Counter[str]:
    """Term (lower case) → how many statements hold it anywhere in their text."""
    terms = {term.lower() for statement in all_statements for term in statement.terms}
    frequency: Counter[str] = Counter()
    for statement in all_statements:
        lowered = statement.text.lower()
        frequency.update(term for term in terms if term in lowered)
    return frequency


def _draw(seed: int, *parts: object) -> str:
    return hashlib.sha256(":".join(map(str, (seed, *parts))).encode()).hexdigest()


def note_sections(conn: sqlite3.Connection) -> list[tuple[int, str, str, str]]:
    """(chunk id, document title, heading, text) of every section of the garden's notes."""
    rows = conn.execute(
        "SELECT c.id, d.title, c.heading, c.text FROM knowledge_chunks c"
        " JOIN knowledge_documents d ON d.id = c.document_id"
        " WHERE d.kind = 'file' ORDER BY d.source, c.ordinal"
    ).fetchall()
    return [(int(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in rows]


def reading_records(
    sections: list[tuple[int, str, str, str]],
    retrieve: Callable[[str, int], list[Hit]],
    *,
    seed: int,
    limit: int,
    k: int,
    max_chars: int,
) -> Reading:
    """At most ``limit`` reading records, one per note section, with their prompts' notes."""
    from bonsai.chat.prompts import notes_block

    found = [(section, statements(section[3])) for section in sections]
    frequency = term_frequency([s for _, section_statements in found for s in section_statements])
    candidates: list[tuple[str, Record]] = []
    for (chunk_id, title, heading, _), section_statements in found:
        askable = [(s, unique_term(s, frequency)) for s in section_statements]
        askable = [(s, t) for s, t in askable if t is not None]
        if not askable:
            continue
        # A statement with a number in it is a fact worth asking about; the draw breaks ties.
        statement, term = min(
            askable,
            key=lambda st: (not re.search(r"\d", st[0].text), _draw(seed, chunk_id, st[0].text)),
        )
        assert term is not None
        section = heading.split(" > ")[-1] if heading else title
        language = statement.language
        record = Record(
            id=f"reading-{chunk_id}",
            instruction=QUESTIONS[language].format(term=term),
            output=statement.text,
            category=CATEGORY,
            language=language,
            reasoning=REASONINGS[language].format(section=section),
        )
        candidates.append((_draw(seed, "pick", chunk_id), record))
    picked = [record for _, record in sorted(candidates, key=lambda c: c[0])[: max(0, limit)]]
    reading = Reading(sections=len(sections))
    for record in sorted(picked, key=lambda r: r.id):
        reading.records.append(record)
        text = notes_block(retrieve(record.instruction, k), max_chars)
        if text:
            reading.notes[record.id] = text
    return reading
