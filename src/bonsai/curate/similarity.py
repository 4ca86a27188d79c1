"""Text normalisation and near-duplicate search (MinHash + LSH over character 3-grams).

Character n-grams work the same for English, Japanese and Chinese (no word segmentation needed),
after NFKC folds full-width and half-width forms together. For signatures, each 3-gram is packed
exactly into one 64-bit integer (three code points of 21 bits), so shingling all texts is a few
numpy operations; MinHash signatures (one-permutation hashing) are banded into LSH buckets, and
only texts that share a bucket are compared exactly, as Python sets of 3-grams. The cost grows
with the number of texts, not with the number of pairs.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence

import numpy as np

from bonsai.util.chars import CJK_CHAR, fold

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")

NUM_PERM = 64
"""MinHash functions per text: enough for a stable estimate, small enough to stay fast."""

SMALL_BUCKET = 8
"""Buckets up to this size are compared pair by pair; larger ones as a star and a chain."""

SIGNATURE_CHARS = 1000
"""Characters of the instruction and of the input that go into a signature. The exact check
afterwards reads whole texts; the cap keeps very long inputs cheap, and can only miss a pair
whose inputs differ a lot in their first 1,000 characters yet are alike as a whole."""

_CHUNK_SHINGLES = 1_000_000
"""Grams hashed per numpy step: bounds the temporary arrays to a few tens of MB."""


normalise = fold
"""Text as duplicates are compared (:func:`bonsai.util.chars.fold`)."""


def answer_key(text: str | None) -> str:
    """An answer with punctuation at its edges dropped: "Yes." and "yes" are the same answer."""
    return trim_answer(normalise(text))


def trim_answer(folded: str) -> str:
    """:func:`answer_key` of an answer that is already folded by :func:`normalise`."""
    # A scan from each end, not a regex: a regex anchored at the end is slow on long answers.
    start, end = 0, len(folded)
    while start < end and not folded[start].isalnum():
        start += 1
    while end > start and not folded[end - 1].isalnum():
        end -= 1
    return folded[start:end]


def _codepoints(text: str) -> np.ndarray:
    # surrogatepass: a lone surrogate (possible in text built in code) is a code point too.
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32).astype(
        np.uint64
    )


Grams = np.ndarray
"""A text's distinct 3-grams, each packed into one integer, sorted (see :func:`shingle_set`)."""

_PAST_UNICODE = 0x110000
"""A code point no text has: pads a text shorter than a gram, so that it is one gram of its own."""


def _pack(c: np.ndarray) -> np.ndarray:
    """Each run of three code points as one integer (21 bits each): exact, no collisions."""
    return (c[:-2] << np.uint64(42)) | (c[1:-1] << np.uint64(21)) | c[2:]


def shingle_set(text: str) -> Grams:
    """The character 3-grams of an already normalised text (a short text is its own gram).

    Packed integers in a sorted array rather than a set of strings: building it is five times
    faster, which counts when every answer of a big cluster is compared.
    """
    c = _codepoints(text)
    if 0 < c.size < 3:
        c = np.concatenate((c, np.full(3 - c.size, _PAST_UNICODE, dtype=np.uint64)))
    grams = np.sort(_pack(c)) if c.size else np.empty(0, dtype=np.uint64)
    # Sorted, a repeated gram sits next to its copies (np.unique is slower on small arrays).
    distinct = np.ones(grams.size, dtype=bool)
    np.not_equal(grams[1:], grams[:-1], out=distinct[1:])
    return grams[distinct]


def jaccard(a: Grams, b: Grams) -> float:
    """Jaccard similarity of two gram sets (two empty texts are equal)."""
    if not a.size and not b.size:
        return 1.0
    inter = np.intersect1d(a, b, assume_unique=True).size
    return inter / (a.size + b.size - inter)


def numbers(text: str) -> list[str]:
    """The numbers a text mentions, in order: prompts that differ in one ask different things."""
    return _NUMBER.findall(text)


def contains_answer(short: str, long: str) -> bool:
    """True when the shorter answer is said inside the longer one ("Tokyo" in "It is Tokyo.").

    Latin-script answers must match whole words ("no" is not in "not"); CJK has no spaces, so a
    plain substring counts.
    """
    if not short:
        return False
    if CJK_CHAR.search(short):
        return short in long
    # The same test as the regex (?<!\w)SHORT(?!\w), done with str.find: a pattern per pair of
    # answers overflowed re's cache, and compiling them took most of a 16k-record check.
    # re's \w is exactly str.isalnum() or "_".
    start = long.find(short)
    while start != -1:
        end = start + len(short)
        if (start == 0 or not _is_word(long[start - 1])) and (
            end == len(long) or not _is_word(long[end])
        ):
            return True
        start = long.find(short, start + 1)
    return False


def _is_word(char: str) -> bool:
    return char.isalnum() or char == "_"


# -- MinHash / LSH ---------------------------------------------------------------------------------


def _all_grams(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """3-grams of every text, concatenated, and the start offset of each text's run."""
    padded = [t if len(t) >= 3 else t + "\x02" * (3 - len(t)) for t in texts]
    lengths = np.fromiter((len(t) for t in padded), dtype=np.int64, count=len(padded))
    c = _codepoints("".join(padded))
    grams = _pack(c)
    # The grams starting in the last two characters of a text run into the next text: drop them.
    ends = np.cumsum(lengths)
    keep = np.ones(c.size, dtype=bool)
    keep[ends - 1] = False
    keep[ends - 2] = False
    grams = grams[keep[: grams.size]]
    offsets = np.concatenate(([0], np.cumsum(lengths - 2)[:-1]))
    return grams, offsets


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a well-spread 64-bit hash of each packed gram."""
    with np.errstate(over="ignore"):
        x = x * np.uint64(0x9E3779B97F4A7C15)
        x ^= x >> np.uint64(31)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(29)
    return x


_EMPTY = np.iinfo(np.uint64).max
_BIN_BITS = int(np.log2(NUM_PERM))


def _densify(signatures: np.ndarray) -> None:
    """Fill empty bins from the next filled one to the right (circularly), plus an offset per
    step, so that two texts agree on a bin with probability ~ their Jaccard similarity
    (Shrivastava & Li, densified one-permutation hashing)."""
    empty = signatures == _EMPTY
    if not empty.any():
        return
    step = np.uint64(0x632BE59BD9B4E019)
    k = signatures.shape[1]
    with np.errstate(over="ignore"):
        for _ in range(2):  # twice round, so every empty bin reaches a filled one
            for j in range(k - 1, -1, -1):
                right = signatures[:, (j + 1) % k]
                fill = empty[:, j] & (right != _EMPTY)
                signatures[fill, j] = right[fill] + step
                empty[fill, j] = False


def minhash_signatures(texts: Sequence[str]) -> np.ndarray:
    """A (len(texts), NUM_PERM) array of MinHash values over the texts' 3-grams.

    One-permutation hashing: each gram is hashed once and falls into one of NUM_PERM bins by its
    top bits; a text's signature is the minimum per bin. The cost is one hash per gram instead of
    NUM_PERM of them.
    """
    signatures = np.full((len(texts), NUM_PERM), _EMPTY, dtype=np.uint64)
    if not texts:
        return signatures
    grams, offsets = _all_grams(texts)
    ends = np.append(offsets[1:], grams.size)
    counts = ends - offsets
    low_mask = np.uint64((1 << (64 - _BIN_BITS)) - 1)
    first = 0
    while first < len(texts):
        # Whole texts until the chunk holds about _CHUNK_SHINGLES grams: bounded memory.
        last = int(np.searchsorted(ends, offsets[first] + _CHUNK_SHINGLES, side="right"))
        last = max(last, first + 1)
        hashed = _mix(grams[int(offsets[first]) : int(ends[last - 1])])
        bins = (hashed >> np.uint64(64 - _BIN_BITS)).astype(np.int64)
        owner = np.repeat(np.arange(last - first, dtype=np.int64), counts[first:last])
        block = signatures[first:last].reshape(-1)  # a view: minimum.at writes through
        np.minimum.at(block, owner * NUM_PERM + bins, hashed & low_mask)
        first = last
    _densify(signatures)
    return signatures


def lsh_rows_per_band(threshold: float) -> int:
    """Rows per band: the most selective banding that still finds a pair at ``threshold``
    with probability >= 0.99 (fewer rows find more pairs, but also more chance ones)."""
    best = 1
    for rows in range(1, NUM_PERM + 1):
        bands = NUM_PERM // rows
        if 1 - (1 - threshold**rows) ** bands >= 0.99:
            best = rows
    return best


def candidate_pairs(signatures: np.ndarray, threshold: float) -> set[tuple[int, int]]:
    """Index pairs (i < j) that share at least one LSH bucket.

    A bucket of more than SMALL_BUCKET texts is linked as a star and a chain (each text with the
    bucket's first and with its neighbour): enough to connect a cluster of copies, without the
    quadratic number of pairs.
    """
    n = signatures.shape[0]
    pairs: set[tuple[int, int]] = set()
    if n < 2:
        return pairs
    rows = lsh_rows_per_band(threshold)
    mixers = np.random.default_rng(7).integers(1, 2**63, size=rows, dtype=np.uint64)
    for band in range(NUM_PERM // rows):
        block = signatures[:, band * rows : (band + 1) * rows]
        with np.errstate(over="ignore"):
            keys = (block * mixers[None, :]).sum(axis=1, dtype=np.uint64)
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        same = np.flatnonzero(sorted_keys[1:] == sorted_keys[:-1])
        if same.size == 0:
            continue
        # Runs of equal keys are the buckets with more than one text.
        breaks = np.flatnonzero(np.diff(same) != 1)
        run_starts = np.concatenate(([same[0]], same[breaks + 1]))
        run_ends = np.concatenate((same[breaks], [same[-1]])) + 2
        for start, end in zip(run_starts.tolist(), run_ends.tolist(), strict=True):
            members = sorted(order[start:end].tolist())
            if len(members) <= SMALL_BUCKET:
                pairs.update(
                    (members[i], members[j])
                    for i in range(len(members))
                    for j in range(i + 1, len(members))
                )
            else:
                pairs.update((members[0], m) for m in members[1:])
                pairs.update(itertools.pairwise(members[1:]))
    return pairs


def near_groups(
    instructions: Sequence[str], inputs: Sequence[str], threshold: float
) -> list[list[int]]:
    """Groups of prompts whose instructions AND inputs are >= ``threshold`` alike (Jaccard of
    character 3-grams), linked pair by pair; texts must be normalised, prompts distinct.

    Both parts must match: two different questions about one long shared context are not
    near-same, however much of their text the context is. Nor are two texts that mention
    different numbers. Only groups of two or more are given.
    """
    n = len(instructions)
    combined = [
        f"{i[:SIGNATURE_CHARS]}\u241e{x[:SIGNATURE_CHARS]}"
        for i, x in zip(instructions, inputs, strict=True)
    ]
    signatures = minhash_signatures(combined)
    pairs = sorted(candidate_pairs(signatures, threshold))
    if pairs:
        # The signatures estimate each pair's similarity (to within ~0.05): far-off pairs skip
        # the exact check, and the most alike go first, so that a cluster is mostly linked
        # before its weaker pairs come up (and they are skipped as already linked).
        left = np.fromiter((p[0] for p in pairs), dtype=np.int64, count=len(pairs))
        right = np.fromiter((p[1] for p in pairs), dtype=np.int64, count=len(pairs))
        estimate = (signatures[left] == signatures[right]).mean(axis=1)
        order = np.argsort(-estimate, kind="stable")
        order = order[estimate[order] >= threshold - 0.2]
        pairs = list(zip(left[order].tolist(), right[order].tolist(), strict=True))

    # Keyed by text: a context shared by many prompts is read once.
    grams_of: dict[str, Grams] = {}
    numbers_of: dict[str, list[str]] = {}

    def alike(a: str, b: str) -> bool:
        if a == b:
            return True
        for text in (a, b):
            if text not in numbers_of:
                numbers_of[text] = numbers(text)
        if numbers_of[a] != numbers_of[b]:
            return False  # "Is 17 prime?" and "Is 19 prime?" are different questions
        for text in (a, b):
            if text not in grams_of:
                grams_of[text] = shingle_set(text)
        return jaccard(grams_of[a], grams_of[b]) >= threshold

    groups = UnionFind(n)
    find = groups.find
    for i, j in pairs:
        if find(i) == find(j):
            continue  # already linked through others: no need to measure this pair
        if alike(instructions[i], instructions[j]) and alike(inputs[i], inputs[j]):
            groups.union(i, j)
    return [g for g in groups.groups().values() if len(g) > 1]


class UnionFind:
    """Groups of indices joined by pairs (near-duplicate clusters)."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, i: int, j: int) -> None:
        ri, rj = self.find(i), self.find(j)
        if ri != rj:
            self.parent[max(ri, rj)] = min(ri, rj)

    def groups(self) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for i in range(len(self.parent)):
            out.setdefault(self.find(i), []).append(i)
        return out
