"""The record: Alpaca/Dolly-style instruction data plus category, language and reasoning."""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import asdict, dataclass, field, fields
from typing import Any

CATEGORIES: tuple[str, ...] = (
    "open_qa",
    "closed_qa",
    "classification",
    "translation",
    "brainstorming",
    "creative",
    "question_to_question",
)
"""The seven categories, in the order reports show them."""

UNIQUE_CATEGORIES = frozenset({"open_qa", "closed_qa", "classification", "translation"})
"""Categories with one most-likely answer: loss teaches facts and skills."""

CREATIVE_CATEGORIES = frozenset({"brainstorming", "creative", "question_to_question"})
"""Categories with many good answers: loss mostly teaches style."""

SOURCE_CATEGORY_MAP: dict[str, str] = {
    # Dolly's categories and common aliases, mapped to the seven.
    "creative_writing": "creative",
    "information_extraction": "closed_qa",
    "summarization": "closed_qa",
    "general_qa": "open_qa",
    "open_qa": "open_qa",
    "closed_qa": "closed_qa",
    "classification": "classification",
    "brainstorming": "brainstorming",
    "translation": "translation",
    "creative": "creative",
    "question_to_question": "question_to_question",
    "q2q": "question_to_question",
}

REASONING_MAX_LINES = 5
REASONING_MAX_WORDS = 120

TEXT_FIELDS: tuple[str, ...] = ("instruction", "input", "output")
"""The fields that make up a record's content (what the model sees and writes)."""

EDITABLE_FIELDS: tuple[str, ...] = (
    "instruction",
    "input",
    "output",
    "category",
    "language",
    "reasoning",
    "source_category",
)
"""Fields a person edits and that import/export carry; the order of export columns."""


_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp", "Mn"})
"""Controls (NUL, ...), format marks (zero-width, bidi), spaces, and combining marks, which show
nothing on their own."""
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800\u180e")
"""Fillers that count as letters or symbols but show nothing (Hangul fillers, Braille blank)."""


def is_invisible(char: str) -> bool:
    return char in _BLANK_LETTERS or unicodedata.category(char) in _INVISIBLE_CATEGORIES


def has_visible_text(text: str | None) -> bool:
    """Whether ``text`` shows anything: not empty, not only spaces, zero-width or bidi marks."""
    for char in text or "":
        if char not in _BLANK_LETTERS and (
            char.isalnum() or unicodedata.category(char) not in _INVISIBLE_CATEGORIES
        ):
            return True  # almost always the first character: no cost for real text
    return False


def describe_invisible(text: str, most: int = 3) -> str:
    """The characters of an invisible-only text, named: 'U+200B ZERO WIDTH SPACE, U+0000'."""
    seen = list(dict.fromkeys(text))
    names = [f"U+{ord(c):04X} {unicodedata.name(c, '')}".rstrip() for c in seen[:most]]
    return ", ".join(names) + (", …" if len(seen) > most else "")


def normalise_category(value: str | None) -> str | None:
    """Map a category name (ours, Dolly's, or an alias) to one of the seven, or None if unknown."""
    if value is None:
        return None
    key = value.strip().lower().replace("-", "_").replace(" ", "_")
    if not key:
        return None
    return SOURCE_CATEGORY_MAP.get(key)


def category_group(category: str | None) -> str:
    """'unique', 'creative' or 'unknown'."""
    if category in UNIQUE_CATEGORIES:
        return "unique"
    if category in CREATIVE_CATEGORIES:
        return "creative"
    return "unknown"


def content_id(instruction: str, input: str, output: str) -> str:
    """A stable id derived from a record's content, for sources that bring no id of their own."""
    digest = hashlib.sha1(f"{instruction}\x00{input}\x00{output}".encode()).hexdigest()
    return f"r-{digest[:12]}"


@dataclass
class Record:
    """One instruction record as BONSAI stores it."""

    id: str
    instruction: str
    input: str = ""
    output: str = ""
    category: str | None = None
    language: str | None = None
    reasoning: str | None = None
    source_category: str | None = None
    category_source: str | None = None
    """Who set `category`: 'human' (given in the data or edited) or 'auto' (suggested)."""
    category_confidence: float | None = None
    language_source: str | None = None
    """Who set `language`: 'human' or 'auto'."""
    split: str | None = None
    """'train' or 'val' once `bonsai data split --val` ran."""
    shard: int | None = None
    reasoning_meta: dict[str, Any] | None = None
    """Provenance of `reasoning`: teacher, model, template hash, time."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Columns of the source that BONSAI has no field for; kept so that round trips lose nothing."""

    def content_hash(self) -> str:
        """Hash of what the model sees and writes (instruction, input, output)."""
        text = "\x00".join(getattr(self, name) or "" for name in TEXT_FIELDS)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def editable(self) -> dict[str, Any]:
        """The fields a person edits, as a plain dict (what history compares)."""
        return {name: getattr(self, name) for name in EDITABLE_FIELDS}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
