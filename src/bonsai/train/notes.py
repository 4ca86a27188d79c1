"""Retrieval-aware training: the notes each training prompt carries.

Chat puts the notes it retrieved into the prompt, so training does too, in exactly the same form
(:func:`bonsai.chat.prompts.notes_block`, the same retriever and the same number of passages).
As in RAFT (Zhang et al., 2024), a record's prompt carries one of three kinds of notes, drawn
from its id and the run's seed so that a resumed run sees the same prompts:

* the notes retrieved for its own instruction (half of the records): the student learns to
  answer from notes when they hold the answer;
* the notes retrieved for *another* record's instruction, with none of its own (a quarter):
  the student learns to answer from what it knows when the notes do not help;
* no notes (a quarter): as chat without notes, or with ``--no-rag``.

``--notes off`` trains without notes; a JSON file (record id → notes text) gives every record its
notes ready-made (the nursery builds those from its sources' reference texts).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bonsai.errors import BonsaiError
from bonsai.records import Record

if TYPE_CHECKING:
    from bonsai.garden import Garden
    from bonsai.rag import Hit

NOTES_MODES = ("auto", "off")
"""``--notes`` values besides a path to a JSON file."""
OWN, DISTRACTORS, NONE = "own", "distractors", "none"


def kind_of(record_id: str, seed: int) -> str:
    """Which notes a record's prompt carries: 'own' (1/2), 'distractors' (1/4) or 'none' (1/4)."""
    digest = hashlib.sha256(f"{seed}:{record_id}".encode()).digest()
    draw = digest[0] % 4
    return OWN if draw < 2 else DISTRACTORS if draw == 2 else NONE


def _other(record_id: str, seed: int, records: Sequence[Record]) -> Record:
    """Another record, chosen from the id and the seed."""
    digest = hashlib.sha256(f"other:{seed}:{record_id}".encode()).digest()
    start = int.from_bytes(digest[:4], "big") % len(records)
    for offset in range(len(records)):
        candidate = records[(start + offset) % len(records)]
        if candidate.id != record_id:
            return candidate
    return records[start]


def _is_own_chunk(hit: Hit, record_id: str) -> bool:
    """Whether ``hit`` is the chunk of the record itself (``dataset:NAME#RECORD_ID``)."""
    source = getattr(hit, "source", "")
    return source.startswith("dataset:") and source.rsplit("#", 1)[-1] == record_id


def retrieved_notes(
    records: Sequence[Record],
    retrieve: Callable[[str, int], list[Hit]],
    *,
    seed: int,
    k: int,
    max_chars: int,
) -> dict[str, str]:
    """Record id → the notes section text of its prompt (see the module docstring)."""
    from bonsai.chat.prompts import notes_block

    cache: dict[str, list[Hit]] = {}

    def hits_for(record: Record) -> list[Hit]:
        # The record's own chunk (when the garden's records are in the knowledge base too) holds
        # the very answer: left out, as eval leaves it out, so notes are other knowledge.
        if record.id not in cache:
            hits = retrieve(record.instruction, k + 1)
            cache[record.id] = [h for h in hits if not _is_own_chunk(h, record.id)][:k]
        return cache[record.id]

    notes: dict[str, str] = {}
    for record in records:
        kind = kind_of(record.id, seed)
        if kind == NONE or (len(records) < 2 and kind == DISTRACTORS):
            continue
        if kind == OWN:
            hits = hits_for(record)
        else:
            own = {hit.chunk_id for hit in hits_for(record)}
            other = hits_for(_other(record.id, seed, records))
            hits = [hit for hit in other if hit.chunk_id not in own]
        text = notes_block(hits, max_chars)
        if text:
            notes[record.id] = text
    return notes


def read_notes_file(path: Path) -> dict[str, str]:
    """A JSON object of record id → notes text."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BonsaiError(f"cannot read notes file: {exc}", file=str(path), field="notes") from None
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise BonsaiError(
            "a notes file must be a JSON object of record id → notes text",
            file=str(path),
            field="notes",
        )
    return data


def training_notes(
    garden: Garden, records: Sequence[Record], mode: str, seed: int
) -> dict[str, str]:
    """Notes for the prompts of ``records`` as ``--notes`` says ('auto', 'off' or a file)."""
    if mode == "off":
        return {}
    if mode != "auto":
        return read_notes_file(Path(mode))
    from bonsai.chat.session import ChatArgs, garden_retriever

    conn = garden.db
    if conn.execute("SELECT 1 FROM knowledge_chunks LIMIT 1").fetchone() is None:
        return {}
    chat = ChatArgs()
    return retrieved_notes(
        records, garden_retriever(conn), seed=seed, k=chat.k, max_chars=chat.max_notes_chars
    )
