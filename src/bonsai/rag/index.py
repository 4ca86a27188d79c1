"""The knowledge base in the garden database: documents, chunks, full-text index, vectors.

Two indexes answer a query:

- **BM25** from SQLite FTS5 (``knowledge_fts``): the porter/unicode61 tokenizer over text whose
  CJK runs are spelled out as character bigrams (:func:`bonsai.rag.text.index_text`), so
  Japanese and Chinese match by bigram, one- and two-character queries included, and English
  matches by stemmed word.
- **Dense**: every chunk's vector (stored by content hash and model) in one normalised float32
  matrix, held in memory per process and rebuilt only when ``knowledge_state.generation``
  changes; a query is one matrix-vector product.

A note chunk's statements (sentences, list items, table rows; :mod:`bonsai.rag.statements`) are
kept too, each with a vector of its own, so that a prompt can show the lines of a retrieved
section that are closest to the question (:mod:`bonsai.rag.focus`).

Writes here run inside the caller's transaction (see :mod:`bonsai.rag.notes`).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from bonsai.rag.centering import LanguageMeans, load_means
from bonsai.rag.chunking import Chunk, chunk_hash, embedding_text
from bonsai.rag.statements import indexed_statements
from bonsai.rag.text import index_text, language_of, query_terms


@dataclass
class DocumentInfo:
    """A document in the knowledge base, as ``bonsai notes list`` shows it."""

    id: int
    source: str
    kind: str
    """'file' or 'dataset'."""
    title: str
    content_hash: str
    added_at: float
    updated_at: float
    chunks: int
    embedded: int
    """Chunks with a vector for the model asked about."""


def generation(conn: sqlite3.Connection) -> int:
    """Changes whenever chunks or vectors are written or removed (kept by triggers)."""
    return int(conn.execute("SELECT generation FROM knowledge_state WHERE id = 1").fetchone()[0])


def document_hashes(conn: sqlite3.Connection) -> dict[str, str]:
    """source → content hash of every stored document."""
    return dict(conn.execute("SELECT source, content_hash FROM knowledge_documents").fetchall())


def write_document(
    conn: sqlite3.Connection,
    *,
    source: str,
    kind: str,
    title: str,
    content_hash: str,
    chunks: Sequence[Chunk],
) -> int:
    """Insert a document, or replace an existing one's chunks. Call inside a transaction."""
    now = time.time()
    row = conn.execute("SELECT id FROM knowledge_documents WHERE source = ?", (source,)).fetchone()
    if row:
        doc_id = int(row[0])
        _delete_chunks(conn, doc_id)
        conn.execute(
            "UPDATE knowledge_documents SET kind = ?, title = ?, content_hash = ?, updated_at = ?"
            " WHERE id = ?",
            (kind, title, content_hash, now, doc_id),
        )
    else:
        cur = conn.execute(
            "INSERT INTO knowledge_documents (source, kind, title, content_hash, added_at,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?)",
            (source, kind, title, content_hash, now, now),
        )
        assert cur.lastrowid is not None  # set by the INSERT just run
        doc_id = cur.lastrowid
    conn.executemany(
        "INSERT INTO knowledge_chunks (document_id, ordinal, anchor, heading, text, content_hash)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [(doc_id, c.ordinal, c.anchor, c.heading, c.text, c.content_hash) for c in chunks],
    )
    rows = conn.execute(
        "SELECT id, heading, text FROM knowledge_chunks WHERE document_id = ?", (doc_id,)
    ).fetchall()
    conn.executemany(
        "INSERT INTO knowledge_fts (rowid, heading, body) VALUES (?, ?, ?)",
        [(r[0], index_text(r[1]), index_text(r[2])) for r in rows],
    )
    if kind == "file":
        conn.executemany(
            "INSERT INTO knowledge_statements (chunk_id, ordinal, text, content_hash)"
            " VALUES (?, ?, ?, ?)",
            [
                (chunk_id, n, statement, chunk_hash(heading, statement))
                for chunk_id, heading, text in rows
                for n, statement in enumerate(indexed_statements(text))
            ],
        )
    return doc_id


def _delete_chunks(conn: sqlite3.Connection, doc_id: int) -> None:
    conn.execute(
        "DELETE FROM knowledge_fts WHERE rowid IN"
        " (SELECT id FROM knowledge_chunks WHERE document_id = ?)",
        (doc_id,),
    )
    conn.execute("DELETE FROM knowledge_chunks WHERE document_id = ?", (doc_id,))


def notes_without_statements(conn: sqlite3.Connection) -> list[str]:
    """Sources of the notes that were added before statements were kept: a section of theirs
    has statements to keep and none stored (adding the file again stores them)."""
    rows = conn.execute(
        "SELECT d.source, c.text FROM knowledge_chunks c"
        " JOIN knowledge_documents d ON d.id = c.document_id"
        " WHERE d.kind = 'file'"
        " AND NOT EXISTS (SELECT 1 FROM knowledge_statements s WHERE s.chunk_id = c.id)"
        " ORDER BY d.source"
    )
    return list(dict.fromkeys(source for source, text in rows if indexed_statements(text)))


def delete_document(conn: sqlite3.Connection, doc_id: int) -> None:
    """Remove a document, its chunks and their full-text rows. Call inside a transaction."""
    _delete_chunks(conn, doc_id)
    conn.execute("DELETE FROM knowledge_documents WHERE id = ?", (doc_id,))


def list_documents(conn: sqlite3.Connection, model: str) -> list[DocumentInfo]:
    rows = conn.execute(
        "SELECT d.id, d.source, d.kind, d.title, d.content_hash, d.added_at, d.updated_at,"
        " COUNT(c.id), COUNT(e.content_hash)"
        " FROM knowledge_documents d"
        " LEFT JOIN knowledge_chunks c ON c.document_id = d.id"
        " LEFT JOIN knowledge_embeddings e ON e.content_hash = c.content_hash AND e.model = ?"
        " GROUP BY d.id ORDER BY d.source",
        (model,),
    ).fetchall()
    return [DocumentInfo(*row) for row in rows]


# -- embeddings ---------------------------------------------------------------------------------


def embedded_hashes(conn: sqlite3.Connection, model: str, hashes: Iterable[str]) -> set[str]:
    """Which of ``hashes`` already have a vector for ``model``."""
    wanted = list(dict.fromkeys(hashes))
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        part = wanted[start : start + 500]
        rows = conn.execute(
            "SELECT content_hash FROM knowledge_embeddings WHERE model = ? AND content_hash IN"
            f" ({', '.join('?' * len(part))})",
            (model, *part),
        )
        found.update(r[0] for r in rows)
    return found


def chunks_without_vectors(conn: sqlite3.Connection, model: str) -> dict[str, str]:
    """content hash → text to embed, for stored chunks and statements that have no vector for
    ``model``."""
    rows = conn.execute(
        "SELECT c.content_hash, c.heading, c.text FROM knowledge_chunks c"
        " WHERE NOT EXISTS (SELECT 1 FROM knowledge_embeddings e"
        "  WHERE e.content_hash = c.content_hash AND e.model = ?)"
        " UNION ALL"
        " SELECT s.content_hash, c.heading, s.text FROM knowledge_statements s"
        " JOIN knowledge_chunks c ON c.id = s.chunk_id"
        " WHERE NOT EXISTS (SELECT 1 FROM knowledge_embeddings e"
        "  WHERE e.content_hash = s.content_hash AND e.model = ?)",
        (model, model),
    )
    return {h: embedding_text(head, text) for h, head, text in rows}


def store_vectors(
    conn: sqlite3.Connection, model: str, hashes: Sequence[str], vectors: np.ndarray
) -> None:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    now = time.time()
    conn.executemany(
        "INSERT OR REPLACE INTO knowledge_embeddings (content_hash, model, dim, vector, created_at)"
        " VALUES (?, ?, ?, ?, ?)",
        [(h, model, vectors.shape[1], vectors[i].tobytes(), now) for i, h in enumerate(hashes)],
    )


def prune_vectors(conn: sqlite3.Connection) -> int:
    """Drop vectors no chunk or statement uses any more (text edited away or removed)."""
    # The inner scan reads the small (model, hash) index, not the vectors themselves.
    cur = conn.execute(
        "DELETE FROM knowledge_embeddings WHERE id IN (SELECT e.id FROM knowledge_embeddings e"
        " WHERE NOT EXISTS"
        " (SELECT 1 FROM knowledge_chunks c WHERE c.content_hash = e.content_hash)"
        " AND NOT EXISTS"
        " (SELECT 1 FROM knowledge_statements s WHERE s.content_hash = e.content_hash))"
    )
    return cur.rowcount


# -- search -------------------------------------------------------------------------------------


ROW_BUDGET = 3000
"""Most rows BM25 scores for one query. Scoring costs a few microseconds per matching row, and
a common term (in 20% of 100k chunks) alone would cost 100+ ms while adding little (its IDF is
low), so the rarest terms are kept up to this many matching rows and the rest are left out. Below
``ROW_BUDGET`` chunks in all, every term is kept and the ranking is exact BM25."""

_df_cache: dict[tuple[str, int], dict[str, int]] = {}
_df_lock = threading.Lock()


def bm25_search(
    conn: sqlite3.Connection, query: str, limit: int, *, budget: int = ROW_BUDGET
) -> list[int]:
    """Chunk ids, best first, by FTS5's BM25 (heading weighted twice the body)."""
    terms = query_terms(query)
    if len(terms) > 1:
        terms = _affordable_terms(conn, terms, budget)
    if not terms:
        return []
    rows = conn.execute(
        "SELECT rowid FROM knowledge_fts WHERE knowledge_fts MATCH ?"
        " ORDER BY bm25(knowledge_fts, 2.0, 1.0) LIMIT ?",
        (" OR ".join(terms), limit),
    )
    return [int(r[0]) for r in rows]


def _affordable_terms(conn: sqlite3.Connection, terms: list[str], budget: int) -> list[str]:
    """The rarest terms whose matching rows add up to at most ``budget`` (at least one term)."""
    key = (_database_key(conn), generation(conn))
    freq = {term: _document_frequency(conn, key, term, budget) for term in terms}
    chosen: list[str] = []
    total = 0
    for term in sorted((t for t in terms if freq[t]), key=lambda t: freq[t]):
        if chosen and total + freq[term] > budget:
            break
        chosen.append(term)
        total += freq[term]
    return chosen


def _document_frequency(conn: sqlite3.Connection, key: tuple[str, int], term: str, cap: int) -> int:
    """Rows matching ``term``, counted up to ``cap + 1`` (enough to know it is too common)."""
    with _df_lock:
        cached = _df_cache.get(key, {}).get(term)
    if cached is not None:
        return cached
    count = int(
        conn.execute(
            "SELECT COUNT(*) FROM (SELECT 1 FROM knowledge_fts WHERE knowledge_fts MATCH ?"
            " LIMIT ?)",
            (term, cap + 1),
        ).fetchone()[0]
    )
    with _df_lock:
        if key not in _df_cache:
            _df_cache.clear()  # one generation per database is enough: older ones are stale
        _df_cache.setdefault(key, {})[term] = count
    return count


@dataclass
class DenseIndex:
    """All chunk vectors of one model: a normalised (n, dim) float32 matrix and the chunk ids.

    A search is one exact matrix-vector product. At 100k chunks of 384 dimensions that reads
    150 MB: about 10-20 ms on two cores, which keeps hybrid search within its 50 ms budget. (A
    1-bit first pass with exact re-scoring was tried: 4x cheaper, but it lost 15-25% of the exact
    top 5 for the anisotropic E5 vectors, so exact it is.)

    For a multilingual model the matrix is language-centred (:mod:`bonsai.rag.centering`), and
    queries must go through :meth:`query_vector` first.
    """

    model: str
    generation: int
    chunk_ids: np.ndarray
    matrix: np.ndarray
    languages: np.ndarray | None = None
    """Each chunk's language (:func:`~bonsai.rag.text.language_of`), in the order of the ids."""
    means: LanguageMeans | None = None
    """The language means the matrix was centred with (None: not centred)."""

    @property
    def multilingual(self) -> bool:
        """Whether scores are comparable across languages (the vectors are centred)."""
        return self.means is not None

    def query_vector(self, vector: np.ndarray, query: str) -> np.ndarray:
        """The encoder's query vector, in the space of this index's matrix."""
        if self.means is None:
            return np.asarray(vector, dtype=np.float32)
        return self.means.center_query(vector, language_of(query))

    def language(self, chunk_id: int) -> str | None:
        """The language of a chunk in this index (None if it has no vector here)."""
        if self.languages is None:
            return None
        pos = int(np.searchsorted(self.chunk_ids, chunk_id))
        if pos < len(self.chunk_ids) and self.chunk_ids[pos] == chunk_id:
            return str(self.languages[pos])
        return None

    def search(self, query_vector: np.ndarray, limit: int) -> list[int]:
        """Chunk ids of the ``limit`` highest cosine similarities, best first."""
        n = len(self.chunk_ids)
        if n == 0 or limit <= 0:
            return []
        scores = self.matrix @ np.asarray(query_vector, dtype=np.float32)
        top = np.argpartition(-scores, limit - 1)[:limit] if limit < n else np.arange(n)
        # Ties break by chunk id, so results do not depend on the partition's whims.
        order = np.lexsort((self.chunk_ids[top], -scores[top]))
        return [int(i) for i in self.chunk_ids[top[order]]]


LANGUAGE_SAMPLE = 200
"""Characters of a chunk that decide its language: enough to tell the script of a paragraph."""
_language_cache: dict[str, str] = {}
"""content hash → language: the text of a hash never changes, so a reload detects only new ones."""


def load_dense_index(conn: sqlite3.Connection, model: str) -> DenseIndex:
    gen = generation(conn)
    # Walk this model's vectors and find their chunks through the hash index: one pass over the
    # vectors, rather than one vector lookup per chunk.
    rows = conn.execute(
        "SELECT c.id, e.vector, e.dim, c.content_hash FROM knowledge_embeddings e"
        " JOIN knowledge_chunks c ON c.content_hash = e.content_hash WHERE e.model = ?",
        (model,),
    ).fetchall()
    if not rows:
        return DenseIndex(model, gen, np.zeros(0, np.int64), np.zeros((0, 1), np.float32))
    dim = int(rows[0][2])
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), dim)
    order = np.argsort(ids)
    ids, matrix = ids[order], matrix[order]
    means = load_means(model)
    if means is None:
        return DenseIndex(model, gen, ids, np.ascontiguousarray(matrix))
    languages = np.array(_chunk_languages(conn, [rows[i][3] for i in order]))
    return DenseIndex(model, gen, ids, means.center_passages(matrix, languages), languages, means)


def _chunk_languages(conn: sqlite3.Connection, hashes: list[str]) -> list[str]:
    missing = [h for h in dict.fromkeys(hashes) if h not in _language_cache]
    for start in range(0, len(missing), 500):
        part = missing[start : start + 500]
        rows = conn.execute(
            f"SELECT content_hash, substr(text, 1, {LANGUAGE_SAMPLE}) FROM knowledge_chunks"
            " WHERE content_hash IN"
            f" ({', '.join('?' * len(part))})",
            part,
        )
        _language_cache.update((h, language_of(text)) for h, text in rows)
    return [_language_cache.get(h, "") for h in hashes]


_dense_cache: dict[tuple[str, str], DenseIndex] = {}
_dense_lock = threading.Lock()


def _database_key(conn: sqlite3.Connection) -> str:
    path = conn.execute("PRAGMA database_list").fetchone()[2]
    return path or f"memory:{id(conn)}"


def dense_index(conn: sqlite3.Connection, model: str) -> DenseIndex:
    """The in-memory index for this database and model, reloaded only when the data changed."""
    key = (_database_key(conn), model)
    gen = generation(conn)
    with _dense_lock:
        cached = _dense_cache.get(key)
        if cached is None or cached.generation != gen:
            cached = load_dense_index(conn, model)
            _dense_cache[key] = cached
        return cached


def clear_term_counts() -> None:
    """Forget the cached term counts of BM25's term choice (they are recounted as needed)."""
    with _df_lock:
        _df_cache.clear()


def chunk_rows(conn: sqlite3.Connection, ids: Sequence[int]) -> dict[int, sqlite3.Row]:
    """id → (text, heading, anchor, source, title, kind) of the given chunks."""
    if not ids:
        return {}
    rows = conn.execute(
        "SELECT c.id, c.text, c.heading, c.anchor, d.source, d.title, d.kind"
        " FROM knowledge_chunks c JOIN knowledge_documents d ON d.id = c.document_id"
        f" WHERE c.id IN ({', '.join('?' * len(ids))})",
        tuple(ids),
    ).fetchall()
    return {int(r[0]): r for r in rows}
