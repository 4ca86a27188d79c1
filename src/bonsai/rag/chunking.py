"""Splitting notes into chunks along headings and paragraphs, with a size cap.

A markdown file is cut at its headings first; each section's paragraphs are then packed into
chunks of at most ``max_units`` units (words, or characters for Japanese/Chinese: see
:func:`bonsai.rag.text.units`). A paragraph larger than the cap is cut at sentence ends, and a
sentence larger than the cap at the cap. Fenced code blocks stay whole where they fit. Every chunk
keeps the path of headings above it ("Cat care > Litter box"), which is shown in citations and
indexed with the text.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from bonsai.rag.statements import indexed_statements
from bonsai.rag.text import split_units, units

HEADING_SEPARATOR = " > "
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
# A sentence ends at ., ! or ? followed by a space, or right after a CJK full stop/mark.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])")
_CJK_STOPS = "。！？"


@dataclass(frozen=True)
class ChunkConfig:
    """How notes are cut into chunks."""

    max_units: int = 200
    """Largest chunk, in words (characters for Japanese/Chinese). 200 fits the 256-token window of
    small sentence encoders with room for the heading."""

    def __post_init__(self) -> None:
        if self.max_units < 20:
            raise ValueError(f"max_units must be at least 20, not {self.max_units}")

    def fingerprint(self) -> str:
        """Part of a document's hash: changing the settings re-chunks documents on the next add.
        (v2: note chunks carry their statements, each with a vector of its own.)
        """
        return f"chunk-v2:max_units={self.max_units}"


@dataclass(frozen=True)
class Chunk:
    """One piece of a document, as stored and retrieved."""

    ordinal: int
    text: str
    heading: str = ""
    anchor: str | None = None
    """Part of the source for pieces with their own address (a record id in a dataset)."""

    @property
    def content_hash(self) -> str:
        """Hash of what gets embedded (heading and text): equal hashes share one embedding."""
        return chunk_hash(self.heading, self.text)

    def embedding_text(self) -> str:
        return embedding_text(self.heading, self.text)

    def statements(self) -> list[tuple[str, str]]:
        """(content hash, text to embed) of each statement of the chunk (for note chunks; see
        :mod:`bonsai.rag.statements`): like the chunk's own, under the chunk's heading."""
        return [
            (chunk_hash(self.heading, s), embedding_text(self.heading, s))
            for s in indexed_statements(self.text)
        ]


def embedding_text(heading: str, text: str) -> str:
    """What a vector is made of: the text, with the headings above it on the first line."""
    return f"{heading}\n{text}" if heading else text


def chunk_hash(heading: str, text: str) -> str:
    return hashlib.sha256(f"{heading}\x00{text}".encode()).hexdigest()[:32]


def markdown_title(text: str) -> str | None:
    """The first level-1 heading, if any (outside code blocks)."""
    for _, path, _body in _sections(text):
        if path and path[0][0] == 1:
            return path[0][1]
    return None


def chunk_markdown(text: str, config: ChunkConfig | None = None) -> list[Chunk]:
    """Chunks of a markdown document: sections by heading, then paragraphs packed to the cap."""
    config = config or ChunkConfig()
    chunks: list[Chunk] = []
    for _, path, body in _sections(text):
        heading = HEADING_SEPARATOR.join(title for _, title in path)
        for piece in _pack(_blocks(body), config.max_units):
            chunks.append(Chunk(len(chunks), piece, heading))
    return chunks


def chunk_text(text: str, config: ChunkConfig | None = None) -> list[Chunk]:
    """Chunks of a plain-text document: paragraphs packed to the cap, no headings."""
    config = config or ChunkConfig()
    return [
        Chunk(i, piece)
        for i, piece in enumerate(_pack(_blocks(text.splitlines()), config.max_units))
    ]


def _sections(text: str) -> list[tuple[int, list[tuple[int, str]], list[str]]]:
    """(index, heading path as (level, title) pairs, body lines) for each section."""
    sections: list[tuple[int, list[tuple[int, str]], list[str]]] = []
    path: list[tuple[int, str]] = []
    body: list[str] = []
    in_fence = False
    for line in text.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
        match = None if in_fence else _HEADING.match(line)
        if match:
            sections.append((len(sections), list(path), body))
            level = len(match.group(1))
            path = [(lvl, title) for lvl, title in path if lvl < level]
            path.append((level, match.group(2).strip()))
            body = []
        else:
            body.append(line)
    sections.append((len(sections), list(path), body))
    return sections


def _blocks(lines: list[str]) -> list[str]:
    """Paragraphs: runs of non-blank lines; a fenced code block is one paragraph."""
    blocks: list[str] = []
    current: list[str] = []
    in_fence = False
    for line in lines:
        if _FENCE.match(line):
            in_fence = not in_fence
        if not line.strip() and not in_fence:
            if current:
                blocks.append("\n".join(current).strip("\n"))
                current = []
        else:
            current.append(line.rstrip())
    if current:
        blocks.append("\n".join(current).strip("\n"))
    return [b for b in blocks if b.strip()]


def _pieces(block: str, limit: int) -> list[str]:
    """A block cut to the cap: whole if it fits, else by sentences, else by units."""
    if units(block) <= limit:
        return [block]
    pieces: list[str] = []
    for sentence in _SENTENCE_END.split(block):
        sentence = sentence.strip()
        if not sentence:
            continue
        pieces.extend([sentence] if units(sentence) <= limit else split_units(sentence, limit))
    return pieces


def _pack(blocks: list[str], limit: int) -> list[str]:
    """Greedy packing of paragraphs (and pieces of paragraphs) into chunks of at most ``limit``."""
    chunks: list[str] = []
    current = ""
    size = 0
    for block in blocks:
        for i, piece in enumerate(_pieces(block, limit)):
            n = units(piece)
            if current and size + n > limit:
                chunks.append(current)
                current, size = "", 0
            if current:
                # Pieces of one paragraph rejoin as sentences; paragraphs keep their blank line.
                current += ("" if current[-1] in _CJK_STOPS else " ") if i else "\n\n"
            current += piece
            size += n
    if current:
        chunks.append(current)
    return chunks
