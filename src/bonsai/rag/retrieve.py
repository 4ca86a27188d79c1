"""Hybrid retrieval over the garden's notes and records: BM25 + dense vectors, fused by rank.

The API other stages call::

    from bonsai.rag import retrieve, format_citation, format_context

    hits = retrieve(garden, "猫のトイレ掃除の頻度", k=5)
    for hit in hits:
        print(format_citation(hit), hit.score, hit.bm25_rank, hit.dense_rank)
        print(hit.text)
    prompt_context = format_context(hits)   # numbered blocks "[1] source > heading\\ntext"

``retrieve(garden, query, k=5, *, mode="hybrid", encoder=None, candidates=50) -> list[Hit]``

- ``garden``: a :class:`~bonsai.garden.Garden` or an open garden database connection.
- ``mode``: ``"hybrid"`` (default), ``"bm25"`` or ``"dense"``.
- ``encoder``: the :class:`~bonsai.rag.embed.Encoder` for the query; by default the process-wide
  :func:`~bonsai.rag.embed.load_encoder` (loaded lazily, once). Only chunks embedded with the
  same model take part in the dense side; the others are still found by BM25.
- Each retriever contributes its best ``candidates`` chunks; they are fused by reciprocal rank,
  ``score = sum(1 / (rrf_k + rank))`` with ``rrf_k = 60`` (Cormack et al., 2009), so neither
  retriever's raw scores need calibrating against the other's.

A :class:`Hit` carries the chunk text, its source (a file path, relative to the garden when it
lies inside it, or ``dataset:NAME#RECORD_ID``), heading, fused score and the 1-based rank each
retriever gave it (``None`` where that retriever did not return it). Answers cite sources with
:func:`format_citation`.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from bonsai.rag import index
from bonsai.rag.embed import Encoder, default_model_name, load_encoder

if TYPE_CHECKING:
    from bonsai.garden import Garden

MODES = ("hybrid", "bm25", "dense")
RRF_K = 60
"""The constant of reciprocal rank fusion: large enough that rank 1 and rank 2 score alike, so
agreement between the two retrievers outweighs one retriever's certainty."""


@dataclass
class Hit:
    """One retrieved chunk."""

    text: str
    source: str
    """File path (relative to the garden when inside it) or ``dataset:NAME#RECORD_ID``."""
    heading: str
    """Headings above the chunk, joined with " > " ("" for none)."""
    score: float
    """Fused score (higher is better); in single-retriever modes, 1 / (rrf_k + rank) as well."""
    bm25_rank: int | None
    """1-based rank from BM25, or None if BM25 did not return this chunk."""
    dense_rank: int | None
    """1-based rank from the dense retriever, or None."""
    chunk_id: int
    title: str
    """The document's title (first heading or file name; the dataset name for records)."""
    kind: str
    """'file' or 'dataset'."""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["citation"] = format_citation(self)
        return data


def format_citation(hit: Hit) -> str:
    """How an answer names its source: ``notes/cat.md > Litter box`` or ``dataset:cats#r-12``."""
    return f"{hit.source} > {hit.heading}" if hit.heading else hit.source


def format_context(hits: Sequence[Hit], *, max_chars: int | None = None) -> str:
    """Numbered blocks for a prompt, ``[n] citation`` then the text; cut at ``max_chars``."""
    blocks = [f"[{i}] {format_citation(h)}\n{h.text.strip()}" for i, h in enumerate(hits, 1)]
    text = "\n\n".join(blocks)
    return text if max_chars is None else text[:max_chars]


def fuse(rankings: dict[str, Sequence[int]], *, rrf_k: int = RRF_K) -> list[tuple[int, float]]:
    """Reciprocal rank fusion of ranked id lists: (id, score), best first.

    Ties (equal scores) go to the id with the better single rank, then the smaller id.
    """
    scores: dict[int, float] = {}
    best: dict[int, int] = {}
    for ranking in rankings.values():
        for rank, item in enumerate(ranking, 1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (rrf_k + rank)
            best[item] = min(best.get(item, rank), rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], best[kv[0]], kv[0]))


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _encoding_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="bonsai-query")
        return _pool


def retrieve(
    garden: Garden | sqlite3.Connection,
    query: str,
    k: int = 5,
    *,
    mode: str = "hybrid",
    encoder: Encoder | None = None,
    candidates: int = 50,
    rrf_k: int = RRF_K,
) -> list[Hit]:
    """The ``k`` chunks that best answer ``query`` (see the module docstring)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if k <= 0 or not query.strip():
        return []
    conn = garden if isinstance(garden, sqlite3.Connection) else garden.db
    depth = max(candidates, k)
    rankings: dict[str, list[int]] = {}
    pending: Future[np.ndarray] | None = None
    if mode in ("hybrid", "dense"):
        # The model is only loaded once there are vectors of it to search.
        dense = index.dense_index(conn, encoder.name if encoder else default_model_name())
        if len(dense.chunk_ids):
            encoder = encoder or load_encoder(dense.model)
            # The query is encoded on another core while SQLite runs BM25 (both release the GIL).
            pending = _encoding_pool().submit(encoder.encode_query, query)
    if mode in ("hybrid", "bm25"):
        rankings["bm25"] = index.bm25_search(conn, query, depth)
    if pending is not None:
        rankings["dense"] = dense.search(pending.result(), depth)
    fused = fuse(rankings, rrf_k=rrf_k)[:k]
    rows = index.chunk_rows(conn, [item for item, _ in fused])
    ranks = {name: {item: r for r, item in enumerate(ids, 1)} for name, ids in rankings.items()}
    hits = []
    for item, score in fused:
        row = rows.get(item)
        if row is None:  # removed between the search and this read
            continue
        _, text, heading, anchor, source, title, kind = tuple(row)
        hits.append(
            Hit(
                text=text,
                source=f"{source}#{anchor}" if anchor else source,
                heading=heading,
                score=score,
                bm25_rank=ranks.get("bm25", {}).get(item),
                dense_rank=ranks.get("dense", {}).get(item),
                chunk_id=item,
                title=title,
                kind=kind,
            )
        )
    return hits
