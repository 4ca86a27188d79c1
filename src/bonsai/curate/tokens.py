"""Counting tokens with the student's tokenizer: batched, and cached by content hash in memory.

Gemma's tokenizer has no pre-tokenizer: a whole text is one BPE "word", and 16k records take
~15 s to encode. Split at spaces (each space kept with the word after it, as SentencePiece does),
the same text becomes pieces that repeat across records, so each distinct piece is encoded once
and a text's count is the sum over its pieces. This gives the same count as encoding the whole
text for tokenizers whose tokens never span a space; a probe checks that on load and falls back
to whole-text encoding for a tokenizer where it does not hold.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bonsai.records import Record

if TYPE_CHECKING:
    from tokenizers import Tokenizer

CountTokens = Callable[[Sequence[str]], list[int]]
"""Token counts of many texts at once (no special tokens): what checks and stats need."""

_PIECE = re.compile(r" *[^ ]+| +")
_PROBES = (
    "Mochi is a six-year-old tabby.  She eats twice a day,\nand sleeps by the window.",
    "もちは六歳の猫です。 毎日 ブラッシングを します。Translate into English: 猫",
    "麻糬每天需要喝水。 请带猫去看兽医 (Dr. Tanaka) at 10:30 -- ok?\n\n- one\n- two",
    "   leading spaces, trailing spaces   ",
)
_BATCH = 4096
"""Texts per call to the tokenizer: large enough for its threads, small enough for memory."""


def _key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=12).digest()


class TokenCounter:
    """Counts tokens of texts with one tokenizer; remembers every text it has counted."""

    def __init__(self, tokenizer: Tokenizer, name: str = "") -> None:
        self.tokenizer = tokenizer
        self.name = name
        self._texts: dict[bytes, int] = {}
        self._pieces: dict[str, int] = {}
        # encode_batch_fast skips character offsets, which counting does not need.
        self._encode_batch = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)
        self.by_pieces = self._pieces_agree(_PROBES)

    def _encode(self, texts: Sequence[str]) -> list[int]:
        counts: list[int] = []
        for start in range(0, len(texts), _BATCH):
            batch = list(texts[start : start + _BATCH])
            counts.extend(len(e.ids) for e in self._encode_batch(batch, add_special_tokens=False))
        return counts

    def _pieces_agree(self, texts: Sequence[str]) -> bool:
        whole = self._encode(texts)
        by_pieces = [sum(self._encode(_PIECE.findall(t))) for t in texts]
        return whole == by_pieces

    def count(self, texts: Sequence[str]) -> list[int]:
        """Token counts of ``texts`` (no special tokens), in order."""
        keys = [_key(t) for t in texts]
        todo: dict[bytes, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key not in self._texts:
                todo[key] = text
        if todo:
            new = list(todo.values())
            counts = self._count_by_pieces(new) if self.by_pieces else self._encode(new)
            self._texts.update(zip(todo, counts, strict=True))
        return [self._texts[k] for k in keys]

    __call__ = count

    def _count_by_pieces(self, texts: Sequence[str]) -> list[int]:
        split = [_PIECE.findall(t) for t in texts]
        known = self._pieces
        fresh = [p for p in set(itertools.chain.from_iterable(split)) if p not in known]
        if fresh:
            known.update(zip(fresh, self._encode(fresh), strict=True))
        get = known.__getitem__
        return [sum(map(get, pieces)) for pieces in split]


_COUNTERS: dict[str, TokenCounter] = {}


def _backend_tokenizer(name: str) -> Tokenizer:
    """The fast (Rust) tokenizer of a model: read straight from ``tokenizer.json`` when the model
    is a folder (no transformers import: seconds faster), else through ``load_tokenizer``."""
    from bonsai.errors import BonsaiError
    from bonsai.student import load_tokenizer, resolve_base_model

    source = resolve_base_model(name)
    file = Path(source) / "tokenizer.json"
    if file.is_file():
        from tokenizers import Tokenizer

        return Tokenizer.from_file(str(file))
    loaded: Any = load_tokenizer(name)
    backend = getattr(loaded, "backend_tokenizer", None)
    if backend is None:
        raise BonsaiError(
            f"the tokenizer of '{name}' has no fast version to count tokens with",
            hint="use a model with a tokenizer.json, or pass --no-tokens",
        )
    return backend


def token_counter(name: str) -> TokenCounter:
    """The counter for a model name (a folder, Hub id or ``embedded:gemma-3-270m``), built once
    per process."""
    if name not in _COUNTERS:
        _COUNTERS[name] = TokenCounter(_backend_tokenizer(name), name)
    return _COUNTERS[name]


def record_text(record: Record) -> str:
    """What a record puts in front of the model: instruction, input, output and reasoning."""
    parts: Iterable[str | None] = (
        record.instruction,
        record.input,
        record.output,
        record.reasoning,
    )
    return "\n".join(p for p in parts if p)


def record_tokens(records: Sequence[Record], count_tokens: CountTokens) -> list[int]:
    """Each record's total tokens (instruction, input, output and reasoning together)."""
    return count_tokens([record_text(r) for r in records])
