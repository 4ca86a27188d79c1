"""Hybrid retrieval over the garden's notes and records: BM25 + dense vectors, fused by rank.

The API other stages call::

    from bonsai.rag import format_citation, retrieve

    hits = retrieve(garden, "猫のトイレ掃除の頻度", k=5)
    for hit in hits:
        print(format_citation(hit), hit.score, hit.bm25_rank, hit.dense_rank)
        print(hit.text)

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
:func:`format_citation`. A prompt takes the hits as :func:`bonsai.chat.prompts.notes_block`
writes them: text labelled with title and heading, without file paths; the interface shows the
sources apart.

Across languages: with a multilingual model the dense side is language-centred (see
:mod:`bonsai.rag.centering`), so an English question can rank a Japanese chunk first; and BM25,
which cannot match a chunk in a script the query has no words of, abstains on such chunks among
the dense side's first ⌈k/2⌉ instead of counting against them (see :func:`fuse`).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from bonsai.rag import index
from bonsai.rag.embed import Encoder, default_model_name, encoded_query, load_encoder
from bonsai.rag.text import language_of, script_of

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

    @property
    def source_label(self) -> str:
        """Where the chunk comes from, for display: ``notes/cat.md > Litter box``."""
        return format_citation(self)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["citation"] = format_citation(self)
        return data


def format_citation(hit: Hit) -> str:
    """How an answer names its source: ``notes/cat.md > Litter box`` or ``dataset:cats#r-12``."""
    return f"{hit.source} > {hit.heading}" if hit.heading else hit.source


def fuse(
    rankings: Mapping[str, Sequence[int]],
    *,
    rrf_k: int = RRF_K,
    abstains: Callable[[str, int], bool] | None = None,
) -> list[tuple[int, float]]:
    """Reciprocal rank fusion of ranked id lists: (id, score), best first.

    ``abstains(name, id)`` says that retriever ``name`` could not have found ``id`` at all (BM25
    and a chunk in a script the query has no words of): its absence from that list is then no
    evidence against the id, and the id's score is the mean contribution of the lists that could
    judge it, times the number of lists, so that it competes on equal terms.

    Ties (equal scores) go to the id with the better single rank, then the smaller id.
    """
    scores: dict[int, float] = {}
    best: dict[int, int] = {}
    for ranking in rankings.values():
        for rank, item in enumerate(ranking, 1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (rrf_k + rank)
            best[item] = min(best.get(item, rank), rank)
    if abstains is not None:
        members = {name: set(ranking) for name, ranking in rankings.items()}
        for item in scores:
            blind = sum(item not in members[name] and abstains(name, item) for name in rankings)
            if blind:
                scores[item] *= len(rankings) / (len(rankings) - blind)
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
    dense: index.DenseIndex | None = None
    if mode in ("hybrid", "dense"):
        # The model is only loaded once there are vectors of it to search.
        dense = index.dense_index(conn, encoder.name if encoder else default_model_name())
        if len(dense.chunk_ids):
            encoder = encoder or load_encoder(dense.model)
            # The query is encoded on another core while SQLite runs BM25 (both release the GIL).
            pending = _encoding_pool().submit(encoded_query, encoder, query)
    if mode in ("hybrid", "bm25"):
        rankings["bm25"] = index.bm25_search(conn, query, depth)
    abstains = None
    if pending is not None and dense is not None:
        rankings["dense"] = dense.search(dense.query_vector(pending.result(), query), depth)
        if "bm25" in rankings and dense.multilingual:
            abstains = _bm25_blind_spot(dense, query, rankings["dense"][: (k + 1) // 2])
    fused = fuse(rankings, rrf_k=rrf_k, abstains=abstains)[:k]
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


def _bm25_blind_spot(
    dense: index.DenseIndex, query: str, considered: Sequence[int]
) -> Callable[[str, int], bool]:
    """Whether BM25 could not have matched a chunk: it is in another script than the query
    (English words never match Japanese text), so only the dense side can judge it.

    Only the chunks in ``considered`` (the dense side's first ⌈k/2⌉) are treated so. Measured
    with bench/retrieval.py (recall@5, same language / across languages): centring alone gives
    0.99 / 0.18, as BM25's silence still buries the chunks in the other language; abstaining on
    every chunk in another script gives 0.90 / 0.78, as the dense side's weaker guesses there
    crowd out chunks both retrievers found; limited to ⌈k/2⌉ it is 0.98 / 0.67 (the dense side
    alone: 0.97 / 0.71; before centring and abstention: 0.97 / 0.06).
    """
    script = script_of(language_of(query))
    blind = {
        item
        for item in considered
        if script and (language := dense.language(item)) and script_of(language) != script
    }
    return lambda name, item: name == "bm25" and item in blind
