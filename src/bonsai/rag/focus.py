"""Focused notes: the lines of a retrieved section that are closest to the question.

A note section holds many facts, and a small student reading three sections for one of them
often answers with the wrong one (the weight for the date, the dough temperature for the oven's).
For a question read from the notes, :func:`focus_hits` keeps, of each retrieved note section,
only its statements (sentences, list items, table rows: :mod:`bonsai.rag.statements`) most like
the question, scored as retrieval scores a chunk (the encoder's vectors, language-centred), in
the note's order. Sections of no more statements than that, sections whose statements have no
vectors yet, and records are shown whole.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from bonsai.rag import index
from bonsai.rag.embed import Encoder, default_model_name, encoded_query, load_encoder
from bonsai.rag.statements import FOCUS_STATEMENTS
from bonsai.rag.text import language_of

if TYPE_CHECKING:
    from bonsai.rag.retrieve import Hit


def focus_hits(
    conn: sqlite3.Connection,
    question: str,
    hits: Sequence[Hit],
    keep: int = FOCUS_STATEMENTS,
    *,
    encoder: Encoder | None = None,
) -> list[Hit]:
    """``hits`` with each note section longer than ``keep`` statements cut to its ``keep``
    statements closest to ``question``, one per line in their order (see the module docstring).
    The question is encoded only when a section is cut."""
    if keep <= 0:
        return list(hits)
    model = encoder.name if encoder else default_model_name()
    statements = _statements(conn, model, [h.chunk_id for h in hits if h.kind == "file"])
    long = {chunk: rows for chunk, rows in statements.items() if len(rows) > keep}
    if not long:
        return list(hits)
    dense = index.dense_index(conn, model)
    encoder = encoder or load_encoder(model)
    query = dense.query_vector(encoded_query(encoder, question), question)
    focused = []
    for hit in hits:
        rows = long.get(hit.chunk_id)
        if rows is None:
            focused.append(hit)
            continue
        matrix = np.stack([vector for _, _, vector in rows])
        if dense.means is not None:
            languages = np.array(
                [language_of(text[: index.LANGUAGE_SAMPLE]) for _, text, _ in rows]
            )
            matrix = dense.means.center_passages(matrix, languages)
        best = np.argsort(-(matrix @ query), kind="stable")[:keep]
        kept = [rows[i][1] for i in sorted(best, key=lambda i: rows[i][0])]
        focused.append(replace(hit, text="\n".join(kept)))
    return focused


def _statements(
    conn: sqlite3.Connection, model: str, chunk_ids: list[int]
) -> dict[int, list[tuple[int, str, np.ndarray]]]:
    """chunk id → (ordinal, text, vector) of its statements, for the chunks whose statements all
    have a vector of ``model``."""
    if not chunk_ids:
        return {}
    marks = ", ".join("?" * len(chunk_ids))
    rows = conn.execute(
        "SELECT s.chunk_id, s.ordinal, s.text, e.vector FROM knowledge_statements s"
        " LEFT JOIN knowledge_embeddings e ON e.content_hash = s.content_hash AND e.model = ?"
        f" WHERE s.chunk_id IN ({marks}) ORDER BY s.chunk_id, s.ordinal",
        (model, *chunk_ids),
    ).fetchall()
    found: dict[int, list[tuple[int, str, np.ndarray]]] = defaultdict(list)
    missing: set[int] = set()
    for chunk_id, ordinal, text, blob in rows:
        if blob is None:
            missing.add(chunk_id)
        else:
            found[chunk_id].append((ordinal, text, np.frombuffer(blob, dtype=np.float32)))
    return {chunk: rows for chunk, rows in found.items() if chunk not in missing}
