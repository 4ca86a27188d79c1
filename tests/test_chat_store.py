"""Chat turns and feedback in the garden database: logged once, validated, durable, consumable."""

from __future__ import annotations

import sqlite3

import pytest

from bonsai.chat import store
from bonsai.db import connect
from bonsai.errors import BonsaiError
from bonsai.garden import Garden


def a_turn(turn_id: str | None = None, **fields: object) -> store.TurnLog:
    data = dict(
        id=turn_id or store.new_turn_id(),
        session="s-test",
        mode="answer",
        run_id="base",
        prompt="猫は何を食べますか？",
        rendered_prompt="### Instruction:\n猫は何を食べますか？\n\n### Response:\n",
        answer="ウェットフードです。",
        retrieved=[
            {"chunk_id": 3, "source": "notes/mochi.md", "citation": "notes/mochi.md > 食事"}
        ],
        settings={"rag": True, "generate": {"temperature": 0.7}},
    )
    data.update(fields)
    return store.TurnLog(**data)  # type: ignore[arg-type]


def test_turns_round_trip_with_their_context(garden: Garden) -> None:
    first = a_turn(created_at=100.0)
    second = a_turn(created_at=200.0, mode="question_to_question", session="s-other")
    store.log_turn(garden.db, first)
    store.log_turn(garden.db, second)
    got = store.get_turn(garden.db, first.id)
    assert got == first  # JSON fields, Japanese text and all
    assert [t.id for t in store.list_turns(garden.db)] == [first.id, second.id]
    assert [t.id for t in store.list_turns(garden.db, limit=1)] == [second.id]
    assert [t.id for t in store.list_turns(garden.db, session="s-test")] == [first.id]
    with pytest.raises(sqlite3.IntegrityError):
        store.log_turn(garden.db, first)  # a turn is logged once
    assert len(store.list_turns(garden.db, limit=None)) == 2


def test_feedback_kinds_and_their_checks(garden: Garden) -> None:
    turn = a_turn()
    store.log_turn(garden.db, turn)
    good = store.add_feedback(garden.db, "good", turn_id=turn.id, reason="短くて正確")
    assert good.status == "pending" and good.reason == "短くて正確"
    store.add_feedback(garden.db, "bad", turn_id=turn.id, reason="too vague")
    store.add_feedback(garden.db, "correction", turn_id=turn.id, text="朝と夜にウェットフード。")
    store.add_feedback(garden.db, "experience", text="Mochi dislikes fish flavours.")
    cases = [
        (dict(kind="meh", turn_id=turn.id), "kind"),
        (dict(kind="correction", turn_id=turn.id, text="  "), "text"),
        (dict(kind="experience"), "text"),
        (dict(kind="good"), "turn_id"),
        (dict(kind="good", turn_id="chatcmpl-nope"), "turn_id"),
        (dict(kind="bad", turn_id=turn.id, reason="x" * (store.MAX_FEEDBACK_CHARS + 1)), "reason"),
    ]
    for kwargs, field in cases:
        kind = kwargs.pop("kind")
        with pytest.raises(BonsaiError) as info:
            store.add_feedback(garden.db, kind, **kwargs)  # type: ignore[arg-type]
        assert info.value.field == field
    kinds = [f.kind for f in store.feedback_for(garden.db, [turn.id])[turn.id]]
    assert kinds == ["good", "bad", "correction"]  # the refused ones left nothing behind


def test_grow_reads_pending_feedback_and_marks_it(garden: Garden) -> None:
    turn = a_turn()
    store.log_turn(garden.db, turn)
    fix = store.add_feedback(garden.db, "correction", turn_id=turn.id, text="better")
    note = store.add_feedback(garden.db, "experience", text="remember me")
    store.add_feedback(garden.db, "good", turn_id=turn.id)
    pending = store.pending_feedback(garden.db, kinds=("correction", "experience"))
    assert [(f.id, t.id if t else None) for f, t in pending] == [(fix.id, turn.id), (note.id, None)]
    store.mark_feedback(garden.db, [fix.id], "used", used_by="dataset:grow-1#r-1")
    store.mark_feedback(garden.db, [note.id], "dismissed")
    assert store.pending_feedback(garden.db, kinds=("correction", "experience")) == []
    (used,) = [f for f in store.feedback_for(garden.db, [turn.id])[turn.id] if f.id == fix.id]
    assert used.status == "used" and used.used_by == "dataset:grow-1#r-1"
    with pytest.raises(ValueError):
        store.mark_feedback(garden.db, [fix.id], "gone")


def test_acknowledged_feedback_is_visible_to_another_connection_at_once(garden: Garden) -> None:
    turn = a_turn()
    store.log_turn(garden.db, turn)
    item = store.add_feedback(garden.db, "bad", turn_id=turn.id, reason="wrong cat")
    other = connect(garden.db_path)
    try:
        row = other.execute("SELECT kind, reason FROM chat_feedback WHERE id = ?", (item.id,))
        assert tuple(row.fetchone()) == ("bad", "wrong cat")
    finally:
        other.close()


def test_migration_on_an_older_database_keeps_its_records(tmp_path) -> None:
    from bonsai.db.migrations import migrate

    conn = sqlite3.connect(tmp_path / "old.db", isolation_level=None)
    conn.row_factory = sqlite3.Row
    migrate(conn, upto="m007_evaluations")
    conn.execute("INSERT INTO datasets (name, created_at) VALUES ('cats', 1.0)")
    assert "m008_chat_turns_and_feedback" in migrate(conn)
    assert conn.execute("SELECT name FROM datasets").fetchone()[0] == "cats"
    conn.execute(
        "INSERT INTO chat_turns (id, session, created_at, mode, run_id, prompt, "
        "rendered_prompt, answer) VALUES ('t', 's', 1, 'answer', 'base', 'q', 'p', 'a')"
    )
    with pytest.raises(sqlite3.IntegrityError):  # the kind is checked by the schema too
        conn.execute(
            "INSERT INTO chat_feedback (turn_id, kind, created_at, updated_at) "
            "VALUES ('t', 'meh', 1, 1)"
        )
