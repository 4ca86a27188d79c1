"""Statements: the sentences, list items and table rows a note section is made of.

The knowledge base keeps the statements of every note section with a vector each
(:mod:`bonsai.rag.index`), so a prompt can show a section's statements closest to the question
(:mod:`bonsai.rag.focus`); reading records ask about one statement of a section
(:mod:`bonsai.train.reading`). Both cut sections the same way.
"""

from __future__ import annotations

import re

MIN_STATEMENT, MAX_STATEMENT = 12, 220
"""Statements shorter or longer than this (characters) are left out: too short to say anything
on their own, or a paragraph that never ends a sentence."""
MIN_CJK_STATEMENT = 8

FOCUS_STATEMENTS = 3
"""Statements a focused section keeps for the prompt: those closest to the question
(:mod:`bonsai.rag.focus`)."""

_LIST_MARK = re.compile(r"^(?:[-*+•]|\d+[.)．、])\s+")
"""A list item's mark: it needs the space after it, so "1.7 mg" keeps its number."""
_TABLE_RULE = re.compile(r"^[\s|:\-]+$")
_MARKUP = re.compile(r"\*\*|__|`|\[([^\]]*)\]\([^)]*\)")
_SENTENCE_END = re.compile(
    r"(?<=[。！？])|(?<!\bDr\.)(?<!\bMr\.)(?<!\bMs\.)(?<!\bSt\.)(?<!\bMrs\.)(?<!\bvs\.)"
    r"(?<!\be\.g\.)(?<!\bi\.e\.)(?<=[.!?])\s+(?=[A-Z0-9\"“(])"
)
_CJK_CHAR = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")


def statement_language(text: str) -> str:
    """ja when ``text`` is mostly Japanese script, zh when mostly Han without kana, else en."""
    from bonsai.curate.language import script_language

    found = script_language(text, han_hint=None)
    return found if found in ("ja", "zh") else "en"


def _joined(previous: str, line: str) -> str:
    if not previous:
        return line
    cjk = _CJK_CHAR.match(line) and _CJK_CHAR.search(previous[-1])
    return previous + ("" if cjk else " ") + line


def blocks(text: str) -> list[str]:
    """Paragraphs, list items and table rows (as 'first cell: the other cells') of a section."""
    found: list[str] = []
    current = ""
    lines = text.splitlines()
    for n, raw in enumerate(lines):
        line = raw.strip()
        if not line or line.startswith("#"):
            found.append(current)
            current = ""
        elif line.startswith("|"):
            found.append(current)
            current = ""
            following = lines[n + 1].strip() if n + 1 < len(lines) else ""
            header = following.startswith("|") and _TABLE_RULE.match(following)
            if _TABLE_RULE.match(line) or header:
                continue  # the rule under a table's header, and the header itself
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            cells = [cell for cell in cells if cell]
            if len(cells) >= 2:
                found.append(f"{cells[0]}: {', '.join(cells[1:])}")
        elif _LIST_MARK.match(line):
            found.append(current)
            current = _LIST_MARK.sub("", line)
        else:
            current = _joined(current, line)
    found.append(current)
    return [_MARKUP.sub(lambda m: m.group(1) or "", b).strip() for b in found if b.strip()]


def split_statements(text: str) -> list[str]:
    """The statements of a note section that are long enough to stand on their own, in order."""
    found = []
    for block in blocks(text):
        for sentence in _SENTENCE_END.split(block):
            sentence = _LIST_MARK.sub("", sentence.strip())
            cjk = statement_language(sentence) != "en"
            shortest = MIN_CJK_STATEMENT if cjk else MIN_STATEMENT
            if shortest <= len(sentence) <= MAX_STATEMENT:
                found.append(sentence)
    return found


def indexed_statements(text: str) -> list[str]:
    """The statements of a note chunk that retrieval gives vectors of their own: none when the
    chunk is a single statement, as the chunk's own vector already is that statement's."""
    found = split_statements(text)
    return found if len(found) > 1 else []
