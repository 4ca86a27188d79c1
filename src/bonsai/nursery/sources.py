"""The open data the nursery stock grows from, read into records.

* ``dolly-ja/databricks-dolly-15k-ja.jsonl``: all 15,015 Dolly records in Japanese;
* ``dolly/dolly-sample.jsonl``: English Dolly records;
* ``enja-pairs/train.{en,ja}``: English–Japanese sentence pairs (tokenised; joined back here),
  made into translation records both ways with the phrasings in ``data/``;
* ``data/`` beside this module: question-to-question and classification records written for
  the project.

Dolly is CC BY-SA 3.0 (Databricks, Inc.; parts from Wikipedia): see ``stock/NOTICE.md``.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bonsai.errors import BonsaiError
from bonsai.records import Record, normalise_category

PROJECT_DATA = Path(__file__).parent / "data"
DOLLY_JA = Path("dolly-ja/databricks-dolly-15k-ja.jsonl")
DOLLY_EN = Path("dolly/dolly-sample.jsonl")
PAIRS = Path("enja-pairs")


@dataclass
class Source:
    """A record and the reference text it came with (Dolly's context), if any."""

    record: Record
    context: str = ""


def _jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    try:
        with path.open(encoding="utf-8") as handle:
            for line_no, line in enumerate(handle, 1):
                if line.strip():
                    yield line_no, json.loads(line)
    except FileNotFoundError:
        raise BonsaiError("missing nursery source", file=str(path)) from None
    except json.JSONDecodeError as exc:
        raise BonsaiError(f"not valid JSON: {exc.msg}", file=str(path)) from None


def read_dolly(path: Path, *, language: str, prefix: str) -> list[Source]:
    """Dolly records (``instruction``/``context``/``response`` or ``input``/``output``)."""
    sources = []
    for line_no, row in _jsonl(path):
        instruction = str(row.get("instruction") or "").strip()
        context = str(row.get("context", row.get("input")) or "").strip()
        output = str(row.get("response", row.get("output")) or "").strip()
        category = normalise_category(str(row.get("category") or ""))
        if not instruction or not output or category is None:
            continue
        record = Record(
            id=f"{prefix}-{row.get('index', line_no)}",
            instruction=instruction,
            input="",
            output=output,
            category=category,
            language=language,
            source_category=str(row.get("category")),
        )
        sources.append(Source(record, context))
    return sources


_EN_JOIN = re.compile(r" (n't|'t|'s|'re|'ve|'ll|'d|'m|[.,!?;:%)])")
_EN_OPEN = re.compile(r"([($]) ")


def join_english(tokens: str) -> str:
    """A tokenised English sentence written as a person would: ``i 'm in the club .`` →
    ``I'm in the club.``"""
    text = _EN_OPEN.sub(r"\1", _EN_JOIN.sub(r"\1", tokens.strip()))
    text = re.sub(r"\bi\b", "I", text)
    text = re.sub(r'" (.*?) "', r'"\1"', text)
    return text[:1].upper() + text[1:]


def join_japanese(tokens: str) -> str:
    """A tokenised Japanese sentence without its spaces (kept only between two Latin words)."""
    return re.sub(r"(?<![A-Za-z0-9]) | (?![A-Za-z0-9])", "", tokens.strip())


def read_pairs(folder: Path, limit: int, seed: int) -> list[tuple[str, str]]:
    """Up to ``limit`` (English, Japanese) pairs, drawn at random from the training pairs."""
    try:
        english = (folder / "train.en").read_text(encoding="utf-8").splitlines()
        japanese = (folder / "train.ja").read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as exc:
        raise BonsaiError("missing nursery source", file=str(exc.filename)) from None
    if len(english) != len(japanese):
        raise BonsaiError("train.en and train.ja differ in length", file=str(folder))
    order = list(range(len(english)))
    random.Random(seed).shuffle(order)
    pairs = []
    for i in order[:limit]:
        en, ja = join_english(english[i]), join_japanese(japanese[i])
        if en and ja:
            pairs.append((en, ja))
    return pairs


def read_phrasings() -> dict[str, list[dict[str, str]]]:
    """How people ask for a translation, per direction: instruction (and input) templates."""
    data = json.loads((PROJECT_DATA / "translation_phrasings.json").read_text(encoding="utf-8"))
    phrasings: dict[str, list[dict[str, str]]] = {}
    for direction, items in data.items():
        phrasings[direction] = [
            item if isinstance(item, dict) else {"instruction": item, "input": ""} for item in items
        ]
    return phrasings


def translation_records(pairs: list[tuple[str, str]], seed: int) -> list[Source]:
    """Each pair becomes one translation record, alternately J→E and E→J."""
    phrasings = read_phrasings()
    rng = random.Random(seed)
    sources = []
    for n, (en, ja) in enumerate(pairs):
        direction = "ja-en" if n % 2 == 0 else "en-ja"
        text, answer = (ja, en) if direction == "ja-en" else (en, ja)
        template = rng.choice(phrasings[direction])
        record = Record(
            id=f"pair-{direction}-{n}",
            instruction=template["instruction"].replace("{text}", text),
            input=template.get("input", "").replace("{text}", text),
            output=answer,
            category="translation",
            language=direction,
        )
        sources.append(Source(record))
    return sources


def project_records(name: str) -> list[Source]:
    """Records written for the project (``data/NAME.jsonl``)."""
    sources = []
    for _, row in _jsonl(PROJECT_DATA / f"{name}.jsonl"):
        fields: dict[str, Any] = {k: row.get(k) for k in Record.__dataclass_fields__ if k in row}
        sources.append(Source(Record(**fields)))
    return sources
