"""Rehearsal: a few of the nursery's own records, trained again in a keeper's round.

A keeper's round trains the stock for several epochs on a few hundred personal records, and what
the stock learned from thousands of others (reading the text given with a question, answering
with one of the offered labels, asking back in q2q) can fade as the student fits the garden.
Rehearsal, the oldest remedy for forgetting in continual learning (Robins, 1995), mixes a small
share of the records the stock was grown on into the round.

The stock ships ``rehearsal.jsonl``: short records of the shards it was grown on, the same
number from every category (and within one, from every language in turn), each with the notes
its prompt carried in the nursery build. With ``bonsai train --rehearsal on``, a run that
continues the stock draws at most half as many of them as it has training records, the
categories taken in turn; they are trained on the answer only and never validated on
(validation stays the keeper's). It is off by default: on the held-out gardens it did not
answer better (docs/training.md has the table).
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bonsai.errors import BonsaiError
from bonsai.records import Record

REHEARSAL_FILE = "rehearsal.jsonl"
PER_CATEGORY = 40
"""Records of each category the stock ships for rehearsal."""
MAX_CHARS = 900
"""Longest record (instruction, input, output and notes together, in characters) shipped:
rehearsal should cost a keeper's round little time."""
SHARE = 2
"""A run rehearses at most one record for every SHARE of its own training records."""
ID_PREFIX = "rehearsal:"
"""Rehearsal records' ids start with this, so they never meet a garden's ids."""


@dataclass
class Rehearsal:
    """The rehearsal records of a run and the notes each prompt carries."""

    records: list[Record] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)


def _length(record: Record, notes: str) -> int:
    return sum(len(text or "") for text in (record.instruction, record.input, record.output, notes))


def choose(
    records: Sequence[Record],
    notes: dict[str, str],
    *,
    per_category: int = PER_CATEGORY,
    max_chars: int = MAX_CHARS,
    seed: int = 0,
) -> list[dict]:
    """Up to ``per_category`` short records of each category, as rehearsal.jsonl lines."""
    by_category: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        if not (record.category and record.language and record.output):
            continue  # the layout cannot render it
        if _length(record, notes.get(record.id, "")) <= max_chars:
            by_category[record.category].append(record)
    rng = random.Random(seed)
    lines: list[dict] = []
    for category in sorted(by_category):
        by_language: dict[str, list[Record]] = defaultdict(list)
        for record in by_category[category]:
            by_language[record.language or ""].append(record)
        chosen = _in_turn([by_language[k] for k in sorted(by_language)], per_category, rng)
        for record in sorted(chosen, key=lambda r: r.id):
            line = {
                "id": record.id,
                "category": category,
                "language": record.language,
                "instruction": record.instruction,
                "input": record.input,
                "output": record.output,
                "reasoning": record.reasoning,
            }
            if record.id in notes:
                line["notes"] = notes[record.id]
            lines.append(line)
    return lines


def _in_turn(groups: Sequence[Sequence[Record]], limit: int, rng: random.Random) -> list[Record]:
    """Up to ``limit`` records, one from each group in turn (each group shuffled by ``rng``)."""
    queues = []
    for group in groups:
        queue = list(group)
        rng.shuffle(queue)
        queues.append(queue)
    chosen: list[Record] = []
    while len(chosen) < limit and any(queues):
        for queue in queues:
            if queue and len(chosen) < limit:
                chosen.append(queue.pop())
    return chosen


def write(path: Path, lines: Sequence[dict]) -> None:
    from bonsai.util.atomic import atomic_write_text

    text = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
    atomic_write_text(path, text)


def load(path: Path) -> Rehearsal:
    """The shipped rehearsal records (ids prefixed) and their notes; empty when none is shipped."""
    if not path.is_file():
        return Rehearsal()
    result = Rehearsal()
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
            record = Record(
                id=ID_PREFIX + str(line["id"]),
                instruction=line["instruction"],
                input=line.get("input") or "",
                output=line["output"],
                category=line["category"],
                language=line.get("language"),
                reasoning=line.get("reasoning"),
            )
        except KeyError as error:
            raise BonsaiError(
                "a rehearsal record lacks a field", file=str(path), line=number, field=error.args[0]
            ) from error
        except (ValueError, TypeError, AttributeError) as error:
            raise BonsaiError(
                f"a rehearsal record is not readable: {error}", file=str(path), line=number
            ) from error
        result.records.append(record)
        if line.get("notes"):
            result.notes[record.id] = line["notes"]
    return result


def draw(rehearsal: Rehearsal, n_train: int, seed: int) -> Rehearsal:
    """At most ``n_train // SHARE`` records, the categories taken in turn, chosen by ``seed``."""
    limit = n_train // SHARE
    if limit <= 0 or not rehearsal.records:
        return Rehearsal()
    rng = random.Random(f"rehearsal:{seed}")
    by_category: dict[str, list[Record]] = defaultdict(list)
    for record in rehearsal.records:
        by_category[record.category or ""].append(record)
    chosen = _in_turn([by_category[k] for k in sorted(by_category)], limit, rng)
    return Rehearsal(
        records=chosen,
        notes={r.id: rehearsal.notes[r.id] for r in chosen if r.id in rehearsal.notes},
    )
