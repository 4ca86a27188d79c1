"""Pending chat feedback → new records, notes and a review list.

What each kind of feedback becomes:

* **correction** → a record: the turn's question as instruction, the user's better answer as
  output. Category: ``question_to_question`` when the turn was asked in q2q mode (the user chose
  it, so it counts as a person's label), otherwise suggested from the text; language detected
  (both by :func:`bonsai.curate.annotate.annotate_records`). The record joins the training split,
  so the validation records that decide promotion stay the same. Provenance goes in ``extra``:
  ``from_feedback``, ``turn``, ``turn_run``, ``turn_mode``, ``rejected_answer``, ``grow_round``.
  Of several corrections of one turn the newest wins; older ones are marked ``dismissed``.
* **experience** ("remember this") → a markdown note ``notes/feedback/experience-<id>.md``,
  added to the knowledge base; with ``experiences_as_records`` also a record (the turn's
  question, or a "what is worth remembering" question, as instruction).
* **bad** rating: when its turn, or the same question asked again, got a correction (now or in
  an earlier round) it is used along with that correction; otherwise it goes on the **review
  list** (printed and exported to ``exports/grow-review.md``) and stays ``pending``, so it is
  settled as soon as such a correction arrives. A correction whose turn was deleted joins the
  review list too.
* **good** rating: left pending and untouched (nothing to learn that the model does not do).

``plan_feedback`` reads and decides without writing anything (what ``--dry-run`` shows);
``ingest`` writes the notes, then the records, the feedback marks and the grow round in one
transaction.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bonsai.chat import store as chat_store
from bonsai.chat.store import Feedback, TurnLog
from bonsai.db.connection import transaction
from bonsai.errors import BonsaiError
from bonsai.garden import Garden
from bonsai.grow.rounds import GrowRound, save_round
from bonsai.records import Record
from bonsai.store import Change, RecordStore
from bonsai.util.atomic import atomic_write_text

Q2Q = "question_to_question"
NOTES_SUBDIR = Path("notes") / "feedback"
REVIEW_FILE = "grow-review.md"
TITLE_CHARS = 60

REMEMBER_QUESTION = {
    "en": "What is worth remembering about this: {title}?",
    "ja": "{title}について、覚えておくべきことは何ですか？",
    "zh": "关于{title}，有什么需要记住的？",
}
"""The instruction of a record made from an experience that came without a question."""


@dataclass
class NewRecord:
    """A record the round adds, and the feedback it consumes."""

    record: Record
    feedback_id: int
    kind: str
    """'correction' or 'experience'."""
    also_used: list[int] = field(default_factory=list)
    """Bad ratings of the same turn, settled by this record."""


@dataclass
class NewNote:
    feedback_id: int
    path: Path
    """Where the note is written (inside the garden's notes/feedback/)."""
    text: str
    record_id: str | None = None

    @property
    def source(self) -> str:
        """The note's name in the knowledge base: its path inside the garden."""
        return (NOTES_SUBDIR / self.path.name).as_posix()


@dataclass
class ReviewItem:
    """An answer rated bad with no better answer given: a person should look at it."""

    feedback_id: int
    turn_id: str | None
    question: str
    answer: str
    reason: str
    mode: str
    run: str
    created_at: float
    why: str = "rated bad, no better answer given"


@dataclass
class FeedbackPlan:
    """What the pending feedback becomes. Computing it writes nothing."""

    round_id: str
    pending: int = 0
    records: list[NewRecord] = field(default_factory=list)
    notes: list[NewNote] = field(default_factory=list)
    review: list[ReviewItem] = field(default_factory=list)
    superseded: dict[int, int] = field(default_factory=dict)
    """Older correction id → the newer correction of the same turn that replaces it."""
    settled_bad: dict[int, str] = field(default_factory=dict)
    """Bad rating id → the record (made in an earlier round) that already corrects its turn."""
    good: int = 0
    """Good ratings, left pending."""

    @property
    def has_work(self) -> bool:
        """Whether anything would be written (records, notes or feedback marks)."""
        return bool(self.records or self.notes or self.superseded or self.settled_bad)

    def marks(self) -> list[tuple[int, str, str]]:
        """(feedback id, new status, used_by) for every feedback this plan consumes.

        ``used_by`` names what the feedback became: the record id for a record, ``note:PATH``
        for an experience kept only as a note, ``superseded:FEEDBACK_ID`` for an older
        correction."""
        out: list[tuple[int, str, str]] = []
        for item in self.records:
            out.append((item.feedback_id, "used", item.record.id))
            out += [(bad, "used", item.record.id) for bad in item.also_used]
        noted = {item.feedback_id for item in self.records}
        for note in self.notes:
            if note.feedback_id not in noted:
                out.append((note.feedback_id, "used", f"note:{note.source}"))
        out += [(old, "dismissed", f"superseded:{new}") for old, new in self.superseded.items()]
        out += [(bad, "used", record_id) for bad, record_id in self.settled_bad.items()]
        return sorted(out)


# -- planning -----------------------------------------------------------------------------------


def feedback_record_id(feedback: Feedback) -> str:
    """A record id that is the same every time the same feedback is planned (reruns are safe)."""
    digest = hashlib.sha1(f"{feedback.turn_id}\x00{feedback.kind}\x00{feedback.text}".encode())
    return f"fb{feedback.id}-{digest.hexdigest()[:8]}"


def _title(text: str) -> str:
    first = next((line.strip(" #-*\t") for line in text.splitlines() if line.strip()), "")
    return first if len(first) <= TITLE_CHARS else first[: TITLE_CHARS - 1].rstrip() + "…"


def _day(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d", time.localtime(timestamp))


def _provenance(feedback: Feedback, turn: TurnLog | None, round_id: str) -> dict[str, Any]:
    extra: dict[str, Any] = {
        "from_feedback": feedback.id,
        "feedback_kind": feedback.kind,
        "grow_round": round_id,
    }
    if turn is not None:
        extra.update(turn=turn.id, turn_run=turn.run_id, turn_mode=turn.mode)
    return extra


def correction_record(feedback: Feedback, turn: TurnLog, round_id: str) -> Record:
    """The record a correction becomes (category and language still to annotate)."""
    q2q = turn.mode == Q2Q
    extra = _provenance(feedback, turn, round_id)
    extra["rejected_answer"] = turn.answer
    return Record(
        id=feedback_record_id(feedback),
        instruction=turn.prompt.strip(),
        output=feedback.text.strip(),
        category=Q2Q if q2q else None,
        category_source="human" if q2q else None,
        split="train",
        extra=extra,
    )


def experience_record(feedback: Feedback, turn: TurnLog | None, round_id: str) -> Record:
    """The record an experience becomes with ``experiences_as_records`` (language to annotate)."""
    if turn is not None and turn.prompt.strip():
        instruction = turn.prompt.strip()
    else:
        from bonsai.chat.prompts import guess_language

        language = guess_language(feedback.text) or "en"
        template = REMEMBER_QUESTION.get(language, REMEMBER_QUESTION["en"])
        instruction = template.format(title=_title(feedback.text))
    return Record(
        id=feedback_record_id(feedback),
        instruction=instruction,
        output=feedback.text.strip(),
        split="train",
        extra=_provenance(feedback, turn, round_id),
    )


def note_text(feedback: Feedback, turn: TurnLog | None) -> str:
    """A remembered experience as a markdown note; the last line says where it came from."""
    text = feedback.text.strip()
    day = _day(feedback.created_at)
    # A one-line experience would only repeat itself as a title.
    title = _title(text) if "\n" in text else f"Remembered on {day}"
    lines = [f"# {title}", "", text, ""]
    where = f"Remembered in chat on {day} (feedback {feedback.id})"
    if turn is not None and turn.prompt.strip():
        where += f", after the question: {turn.prompt.strip()}"
    lines.append(f"_{where}_")
    return "\n".join(lines) + "\n"


def _annotate(records: list[Record]) -> list[Record]:
    """Language (and, unless a person's, category) of each new record."""
    if not records:
        return []
    from bonsai.curate.annotate import AnnotateArgs, annotate_records

    return annotate_records(records, AnnotateArgs())


def _review_item(feedback: Feedback, turn: TurnLog | None, why: str) -> ReviewItem:
    return ReviewItem(
        feedback_id=feedback.id,
        turn_id=feedback.turn_id,
        question=turn.prompt if turn else "",
        answer=turn.answer if turn else "",
        reason=feedback.reason,
        mode=turn.mode if turn else "",
        run=turn.run_id if turn else "",
        created_at=feedback.created_at,
        why=why,
    )


def _same_question(text: str) -> str:
    """A question's key for matching: case and spacing do not make another question."""
    return " ".join(text.split()).casefold()


def _earlier_corrections(conn: sqlite3.Connection) -> dict[str, str]:
    """Turn id and question key → record id of corrections used in earlier rounds."""
    out: dict[str, str] = {}
    rows = conn.execute(
        "SELECT f.turn_id, t.prompt, f.used_by FROM chat_feedback f"
        " JOIN chat_turns t ON t.id = f.turn_id"
        " WHERE f.kind = 'correction' AND f.status = 'used' AND f.used_by IS NOT NULL"
        " ORDER BY f.id"
    )
    for turn_id, prompt, used_by in rows:
        out[turn_id] = used_by
        out[_same_question(prompt)] = used_by
    return out


def plan_feedback(
    garden: Garden, round_id: str, *, experiences_as_records: bool = False
) -> FeedbackPlan:
    """Decide what every pending feedback becomes. Reads only."""
    pending = chat_store.pending_feedback(garden.db)
    plan = FeedbackPlan(round_id=round_id, pending=len(pending))
    latest: dict[str, tuple[Feedback, TurnLog]] = {}
    bad: list[tuple[Feedback, TurnLog | None]] = []
    experiences: list[tuple[Feedback, TurnLog | None]] = []
    for feedback, turn in pending:
        if feedback.kind == "correction":
            if turn is None:
                why = "a correction whose chat turn was deleted: no question to pair it with"
                plan.review.append(_review_item(feedback, None, why))
                continue
            older = latest.get(turn.id)
            if older is not None:
                plan.superseded[older[0].id] = feedback.id
            latest[turn.id] = (feedback, turn)
        elif feedback.kind == "experience":
            experiences.append((feedback, turn))
        elif feedback.kind == "bad":
            bad.append((feedback, turn))
        else:
            plan.good += 1

    corrections = {
        turn_id: NewRecord(correction_record(fb, turn, round_id), fb.id, "correction")
        for turn_id, (fb, turn) in latest.items()
    }
    # A bad rating is settled by a correction of its turn, or of the same question asked again.
    by_question = {_same_question(item.record.instruction): item for item in corrections.values()}
    earlier = _earlier_corrections(garden.db) if bad else {}
    for feedback, turn in bad:
        key = _same_question(turn.prompt) if turn is not None else ""
        if turn is not None and turn.id in corrections:
            corrections[turn.id].also_used.append(feedback.id)
        elif key in by_question:
            by_question[key].also_used.append(feedback.id)
        elif turn is not None and (turn.id in earlier or key in earlier):
            plan.settled_bad[feedback.id] = earlier.get(turn.id) or earlier[key]
        else:
            plan.review.append(_review_item(feedback, turn, "rated bad, no better answer given"))

    new = list(corrections.values())
    notes_dir = garden.root / NOTES_SUBDIR
    for feedback, turn in experiences:
        path = notes_dir / f"experience-{feedback.id}.md"
        record_id = None
        if experiences_as_records:
            item = NewRecord(experience_record(feedback, turn, round_id), feedback.id, "experience")
            new.append(item)
            record_id = item.record.id
        plan.notes.append(NewNote(feedback.id, path, note_text(feedback, turn), record_id))

    annotated = _annotate([item.record for item in new])
    plan.records = [replace(item, record=r) for item, r in zip(new, annotated, strict=True)]
    plan.records.sort(key=lambda item: item.feedback_id)
    return plan


# -- writing ------------------------------------------------------------------------------------


def write_review(garden: Garden, review: Sequence[ReviewItem]) -> Path | None:
    """Export the review list to ``exports/grow-review.md`` (replaced each grow: it lists what
    is pending now). Removes a stale file when the list is empty; returns the path written."""
    path = garden.exports_dir / REVIEW_FILE
    if not review:
        path.unlink(missing_ok=True)
        return None
    lines = [
        "# Answers to review",
        "",
        "Rated bad in chat, with no better answer given. A better answer makes it a record in "
        "the next `bonsai grow`: ask the same question again in `bonsai chat` and /correct the "
        "answer, or POST /v1/feedback with kind 'correction' and the turn id below. "
        "`bonsai grow --dismiss-reviews` drops the list.",
        "",
    ]
    for item in review:
        lines += [
            f"## Feedback {item.feedback_id} · {_day(item.created_at)}",
            "",
            f"- turn: `{item.turn_id or '(deleted)'}` · mode: {item.mode or '?'} · "
            f"run: {item.run or '?'}",
            f"- why listed: {item.why}",
        ]
        if item.reason:
            lines.append(f"- reason given: {item.reason}")
        lines += ["", "**Question**", "", item.question or "(unknown)", ""]
        lines += ["**Answer**", "", item.answer or "(unknown)", ""]
    garden.exports_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, "\n".join(lines))
    return path


def write_notes(garden: Garden, notes: Sequence[NewNote]) -> list[str]:
    """Write the experience notes and add them to the knowledge base; their source names.

    Safe to repeat: the same feedback gives the same file and text, and the knowledge base
    skips a document whose content did not change."""
    if not notes:
        return []
    from bonsai.rag.notes import add_paths, source_for

    for note in notes:
        note.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(note.path, note.text)
    add_paths(garden, [note.path for note in notes])
    return [source_for(garden, note.path) for note in notes]


def ingest(
    garden: Garden, plan: FeedbackPlan, round_: GrowRound, *, dismiss_reviews: bool = False
) -> int | None:
    """Write what ``plan`` says, all or nothing: notes first (repeatable), then in one
    transaction the records (one changeset in ``round_.dataset``), the feedback marks and the
    round (created, or extended when it is an open round that had not trained yet). Returns the
    changeset id (None when no record was new).

    Raises :class:`BonsaiError` if any feedback of the plan stopped being pending meanwhile (a
    grow running elsewhere): nothing is written then, and the next grow plans afresh."""
    notes = write_notes(garden, plan.notes)
    marks = plan.marks()
    if dismiss_reviews:
        marks += [(item.feedback_id, "dismissed", "reviewed") for item in plan.review]
    ids = [feedback_id for feedback_id, _, _ in marks]
    conn = garden.db
    store = RecordStore(conn)
    with transaction(conn):
        _check_still_pending(conn, ids)
        dataset = round_.dataset
        known = plan.records and dataset in store.dataset_names()
        existing = {r.id for r in store.records(dataset)} if known else set()
        changes = [
            Change(None, item.record) for item in plan.records if item.record.id not in existing
        ]
        changeset = store.apply(
            dataset,
            changes,
            kind="grow",
            description=f"grow {round_.id}: {len(changes)} records from chat feedback",
            summary={"round": round_.id, "feedback": sorted(ids)},
        )
        for feedback_id, status, used_by in marks:
            chat_store.mark_feedback(conn, [feedback_id], status, used_by=used_by)
        round_.records += [item.record.id for item in plan.records]
        round_.feedback = sorted({*round_.feedback, *ids})
        round_.notes += [n for n in notes if n not in round_.notes]
        round_.stage = "ingested"
        save_round(conn, round_)
    return changeset


def _check_still_pending(conn: sqlite3.Connection, ids: Sequence[int]) -> None:
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        marks = ", ".join("?" for _ in chunk)
        row = conn.execute(
            f"SELECT id FROM chat_feedback WHERE status != 'pending' AND id IN ({marks}) LIMIT 1",
            chunk,
        ).fetchone()
        if row is not None:
            raise BonsaiError(
                f"feedback {row[0]} was used by another grow while this one was planning",
                hint="run `bonsai grow` again: it plans from what is still pending",
            )
