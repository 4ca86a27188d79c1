"""Helpers shared by the grow tests: a garden with a dataset, chat turns and feedback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bonsai.chat import store as chat_store
from bonsai.chat.store import TurnLog, new_turn_id
from bonsai.garden import Garden
from bonsai.records import Record
from bonsai.store import Change, RecordStore

DATASET = "cats"

QUESTIONS = [
    ("open_qa", "en", "How old is Mochi?", "Mochi is six years old."),
    ("open_qa", "en", "What does Mochi eat for breakfast?", "Mochi eats wet food."),
    ("closed_qa", "en", "Which toy does Mochi like, according to the note?", "The feather toy."),
    ("classification", "en", "Is a lily safe or dangerous for cats?", "Dangerous."),
    ("translation", "en-ja", "Translate into Japanese: Give the cat water.", "猫に水をあげて。"),
    ("brainstorming", "en", "List games to play with a cat.", "Feather wand\nLaser\nBoxes"),
    ("open_qa", "ja", "もちは何歳ですか？", "もちは六歳です。"),
    ("open_qa", "zh", "猫每天需要喝水吗？", "需要，猫每天都要喝水。"),
]


def dataset_records(n: int = 16) -> list[Record]:
    """``n`` records over several categories and languages; every fourth one validates."""
    records = []
    for i in range(n):
        category, language, question, answer = QUESTIONS[i % len(QUESTIONS)]
        records.append(
            Record(
                id=f"rec-{i:02d}",
                instruction=f"{question} ({i})" if i >= len(QUESTIONS) else question,
                output=answer,
                category=category,
                language=language,
                split="val" if i % 4 == 0 else "train",
            )
        )
    return records


def add_dataset(garden: Garden, n: int = 16, name: str = DATASET) -> list[Record]:
    records = dataset_records(n)
    RecordStore(garden.db).apply(
        name, [Change(None, r) for r in records], kind="import", description="test records"
    )
    return records


def turn(
    garden: Garden, question: str, answer: str, *, mode: str = "answer", run: str = "base"
) -> TurnLog:
    """Log a chat turn the way chat does (no model needed)."""
    log = TurnLog(
        id=new_turn_id(),
        session="s-test",
        mode=mode,
        run_id=run,
        prompt=question,
        rendered_prompt=question,
        answer=answer,
    )
    chat_store.log_turn(garden.db, log)
    return log


def feedback(garden: Garden, kind: str, turn_log: TurnLog | None = None, **kw: Any) -> int:
    item = chat_store.add_feedback(garden.db, kind, turn_id=turn_log.id if turn_log else None, **kw)
    return item.id


def feedback_rows(garden: Garden) -> dict[int, tuple[str, str | None]]:
    rows = garden.db.execute("SELECT id, status, used_by FROM chat_feedback ORDER BY id")
    return {row[0]: (row[1], row[2]) for row in rows}


def snapshot(garden: Garden) -> dict[str, Any]:
    """Everything a grow could write: tables and the files under notes/, exports/, runs/."""
    conn = garden.db
    tables = {}
    for table in (
        "records",
        "changesets",
        "chat_feedback",
        "grow_rounds",
        "knowledge_documents",
        "training_runs",
        "teacher_runs",
    ):
        rows = conn.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()
        tables[table] = [json.dumps([*row], ensure_ascii=False, default=str) for row in rows]
    files = sorted(
        str(p.relative_to(garden.root))
        for folder in (garden.notes_dir, garden.exports_dir, garden.runs_dir)
        for p in Path(folder).rglob("*")
    )
    return {"tables": tables, "files": files}
