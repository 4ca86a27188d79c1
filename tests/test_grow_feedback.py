"""bonsai grow, up to the new records: feedback → records, notes, review list; marks; reruns."""

from __future__ import annotations

import pytest
from grow_support import DATASET, add_dataset, feedback, feedback_rows, snapshot, turn

from bonsai.config import TeacherConfig
from bonsai.errors import BonsaiError
from bonsai.grow.args import GrowArgs
from bonsai.grow.feedback_to_records import ingest, plan_feedback
from bonsai.grow.pipeline import grow
from bonsai.grow.rounds import GrowRound, list_rounds, unfinished_round
from bonsai.store import RecordStore

NO_TRAIN = GrowArgs(train=False)


@pytest.fixture(autouse=True)
def _hashing_embeddings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BONSAI_EMBED_MODEL", "hashing")


def _new_records(garden):
    return [r for r in RecordStore(garden.db).records(DATASET) if "from_feedback" in r.extra]


def test_corrections_become_records_in_the_right_category_and_language(garden):
    add_dataset(garden)
    en = turn(garden, "How often should I brush Mochi?", "Mochi Mochi Mochi Mochi.")
    ja = turn(garden, "猫のごはんは何回？", "ごはんです。ごはんです。", mode="question_to_question")
    zh = turn(garden, "猫可以吃巧克力吗？", "可以。")
    bad_en = feedback(garden, "bad", en, reason="it just repeats the name")
    fix_en = feedback(
        garden, "correction", en, text="Brush Mochi twice a week, and daily in spring."
    )
    fix_ja = feedback(
        garden,
        "correction",
        ja,
        text="子猫ですか、成猫ですか？\nドライフードですか、ウェットフードですか？",
    )
    fix_zh = feedback(garden, "correction", zh, text="不可以，巧克力对猫有毒。")

    result = grow(garden, NO_TRAIN)

    assert result.status == "ingested"
    made = {r.extra["from_feedback"]: r for r in _new_records(garden)}
    assert set(made) == {fix_en, fix_ja, fix_zh}

    en_record = made[fix_en]
    assert en_record.instruction == "How often should I brush Mochi?"
    assert en_record.output == "Brush Mochi twice a week, and daily in spring."
    assert en_record.language == "en"
    assert en_record.category_source == "auto" and en_record.category is not None
    assert en_record.split == "train"
    assert en_record.extra["turn"] == en.id
    assert en_record.extra["rejected_answer"] == "Mochi Mochi Mochi Mochi."

    ja_record = made[fix_ja]
    assert ja_record.category == "question_to_question"
    assert ja_record.category_source == "human"
    assert ja_record.language == "ja"
    assert made[fix_zh].language == "zh"
    assert made[fix_zh].category != "question_to_question"

    # Every new record got its reasoning from the (offline) teacher.
    for record in made.values():
        assert record.reasoning and record.reasoning_meta["backend"] == "template"

    rows = feedback_rows(garden)
    assert rows[fix_en] == ("used", en_record.id)
    assert rows[bad_en] == ("used", en_record.id)  # settled by the correction of its turn
    assert rows[fix_ja] == ("used", ja_record.id)
    assert rows[fix_zh] == ("used", made[fix_zh].id)
    history = RecordStore(garden.db).history(DATASET)
    assert [c.kind for c in history][-2:] == ["grow", "teach"]


def test_a_second_grow_does_nothing_new(garden):
    add_dataset(garden)
    t = turn(garden, "Where does Mochi sleep?", "Mochi.")
    feedback(garden, "correction", t, text="Mochi sleeps on the sofa by the window.")
    first = grow(garden, NO_TRAIN)
    assert first.status == "ingested"
    before = snapshot(garden)

    second = grow(garden, NO_TRAIN)

    assert second.status == "nothing"
    assert "wait for training" in second.message
    assert snapshot(garden) == before


def test_no_pending_feedback_is_a_clear_no_op(garden, cli):
    add_dataset(garden)
    before = snapshot(garden)
    result = cli("grow", "--garden", garden.root)
    assert result.exit_code == 0, result.output
    assert "No pending feedback: nothing to grow" in result.stdout
    assert snapshot(garden) == before


def test_dry_run_writes_nothing(garden, cli):
    add_dataset(garden)
    t = turn(garden, "Is a lily safe for cats?", "Yes.")
    feedback(garden, "bad", t, reason="wrong and dangerous")
    feedback(garden, "correction", t, text="No. Lilies are very toxic to cats.")
    feedback(garden, "experience", text="Mochi hid under the bed during the fireworks.")
    other = turn(garden, "What is Mochi's favourite toy?", "A box.")
    feedback(garden, "bad", other, reason="too short")
    before = snapshot(garden)

    result = cli("grow", "--dry-run", "--garden", garden.root)

    assert result.exit_code == 0, result.output
    assert snapshot(garden) == before
    out = result.stdout
    assert "New records from feedback" in out and "Lilies are very toxic" in out
    assert "experience-3.md" in out
    assert "To review" in out and "too short" in out
    assert "Dry run: nothing was written." in out


def test_experiences_become_notes_and_optionally_records(garden):
    add_dataset(garden)
    t = turn(garden, "What scares Mochi?", "Nothing.")
    with_turn = feedback(garden, "experience", t, text="Fireworks scare Mochi; she hides.")
    alone = feedback(garden, "experience", text="2024年の夏、もちは初めて海を見た。")

    grow(garden, GrowArgs(train=False, experiences_as_records=True))

    note = garden.root / "notes" / "feedback" / f"experience-{with_turn}.md"
    assert "Fireworks scare Mochi" in note.read_text(encoding="utf-8")
    assert "What scares Mochi?" in note.read_text(encoding="utf-8")
    sources = {row[0] for row in garden.db.execute("SELECT source FROM knowledge_documents")}
    assert f"notes/feedback/experience-{with_turn}.md" in sources
    assert f"notes/feedback/experience-{alone}.md" in sources

    made = {r.extra["from_feedback"]: r for r in _new_records(garden)}
    assert made[with_turn].instruction == "What scares Mochi?"
    assert made[alone].language == "ja"
    assert "覚えておくべきこと" in made[alone].instruction
    rows = feedback_rows(garden)
    assert rows[with_turn] == ("used", made[with_turn].id)


def test_experience_without_record_is_marked_with_its_note(garden):
    add_dataset(garden)
    fb = feedback(garden, "experience", text="Mochi weighs 4.2 kg since March.")
    result = grow(garden, NO_TRAIN)
    assert result.round is not None and result.round.records == []
    assert feedback_rows(garden)[fb] == ("used", f"note:notes/feedback/experience-{fb}.md")
    assert _new_records(garden) == []


def test_bad_ratings_go_to_the_review_list_and_stay_pending(garden, cli):
    add_dataset(garden)
    t = turn(garden, "How much water does Mochi need?", "Water water water.")
    bad = feedback(garden, "bad", t, reason="a loop")
    good = feedback(garden, "good", turn(garden, "Who is Mochi?", "A tabby cat."))

    result = cli("grow", "--garden", garden.root)

    assert result.exit_code == 0, result.output
    assert "To review" in result.stdout and "a loop" in result.stdout
    review = (garden.exports_dir / "grow-review.md").read_text(encoding="utf-8")
    assert "How much water does Mochi need?" in review and "Water water water." in review
    assert feedback_rows(garden)[bad] == ("pending", None)
    assert feedback_rows(garden)[good] == ("pending", None)
    assert list_rounds(garden.db) == []

    # A correction of that turn, later, settles the bad rating with it.
    fix = feedback(garden, "correction", t, text="About 200 ml a day for a 4 kg cat.")
    grow(garden, NO_TRAIN)
    record_id = feedback_rows(garden)[fix][1]
    assert feedback_rows(garden)[bad] == ("used", record_id)
    assert not (garden.exports_dir / "grow-review.md").exists()


def test_dismiss_reviews(garden):
    add_dataset(garden)
    bad = feedback(garden, "bad", turn(garden, "Q?", "A."), reason="meh")
    grow(garden, GrowArgs(train=False, dismiss_reviews=True))
    assert feedback_rows(garden)[bad] == ("dismissed", "reviewed")


def test_bad_rating_after_an_earlier_correction_is_settled_by_that_record(garden):
    add_dataset(garden)
    t = turn(garden, "Does Mochi like baths?", "Yes.")
    fix = feedback(garden, "correction", t, text="No, Mochi hates baths.")
    grow(garden, NO_TRAIN)
    late_bad = feedback(garden, "bad", t, reason="wrong")
    grow(garden, NO_TRAIN)
    assert feedback_rows(garden)[late_bad] == ("used", feedback_rows(garden)[fix][1])


def test_newest_correction_of_a_turn_wins(garden):
    add_dataset(garden)
    t = turn(garden, "When is Mochi's birthday?", "Today.")
    old = feedback(garden, "correction", t, text="In May.")
    new = feedback(garden, "correction", t, text="On the 3rd of May.")
    grow(garden, NO_TRAIN)
    made = _new_records(garden)
    assert [r.output for r in made] == ["On the 3rd of May."]
    rows = feedback_rows(garden)
    assert rows[old] == ("dismissed", f"superseded:{new}")
    assert rows[new] == ("used", made[0].id)


def test_a_grow_stopped_by_the_teacher_resumes_without_duplicates(garden):
    add_dataset(garden)
    t = turn(garden, "What food does Mochi like?", "Food.")
    fix = feedback(garden, "correction", t, text="Mochi likes tuna and chicken wet food.")
    # A teacher nobody listens to: the teach stage stops after the records were committed.
    garden.config.teacher = TeacherConfig(
        backend="openai", base_url="http://127.0.0.1:9/v1", model="nobody", timeout=2.0
    )
    with pytest.raises(BonsaiError, match="teacher stopped"):
        grow(garden, NO_TRAIN)
    open_round = unfinished_round(garden.db)
    assert open_round is not None and open_round.stage == "ingested"
    assert len(_new_records(garden)) == 1 and not _new_records(garden)[0].reasoning
    assert feedback_rows(garden)[fix][0] == "used"

    garden.config.teacher = TeacherConfig()  # the offline template teacher
    result = grow(garden, NO_TRAIN)

    assert result.resumed and result.round is not None and result.round.id == open_round.id
    records = _new_records(garden)
    assert len(records) == 1 and records[0].reasoning
    assert unfinished_round(garden.db).stage == "taught"


def test_ingest_writes_nothing_if_feedback_was_used_meanwhile(garden):
    add_dataset(garden)
    t = turn(garden, "Q1?", "A1.")
    first = feedback(garden, "correction", t, text="Better answer one.")
    plan = plan_feedback(garden, "grow-test")
    # Another grow uses the feedback between planning and writing.
    garden.db.execute("UPDATE chat_feedback SET status = 'used' WHERE id = ?", (first,))
    before = snapshot(garden)
    round_ = GrowRound(id="grow-test", dataset=DATASET, stage="ingested", current_run="base")
    with pytest.raises(BonsaiError, match="used by another grow"):
        ingest(garden, plan, round_)
    assert snapshot(garden) == before


def test_dataset_must_be_named_when_it_is_ambiguous(garden, cli):
    add_dataset(garden)
    add_dataset(garden, 4, name="dogs")
    feedback(garden, "correction", turn(garden, "Q?", "A."), text="Better.")
    result = cli("grow", "--no-train", "--garden", garden.root)
    assert result.exit_code == 2
    assert "which dataset" in result.stderr and "cats, dogs" in result.stderr
    assert "Traceback" not in result.output
    result = cli("grow", "--no-train", "--dataset", "dogs", "--garden", garden.root)
    assert result.exit_code == 0, result.output
    assert len(RecordStore(garden.db).records("dogs")) == 5


def test_steps_and_epochs_together_are_refused(garden, cli):
    result = cli("grow", "--steps", "3", "--epochs", "1", "--garden", garden.root)
    assert result.exit_code == 2
    assert "--steps or --epochs, not both" in result.stderr


def test_bad_rating_is_settled_by_a_correction_of_the_same_question_asked_again(garden):
    add_dataset(garden)
    bad = feedback(garden, "bad", turn(garden, "Can Mochi eat grapes?", "Yes."), reason="no!")
    again = turn(garden, "can mochi  eat grapes?", "Sure.")
    fix = feedback(garden, "correction", again, text="No: grapes can harm a cat's kidneys.")
    grow(garden, NO_TRAIN)
    rows = feedback_rows(garden)
    assert rows[bad] == ("used", rows[fix][1])


def test_an_open_round_keeps_its_dataset(garden, cli):
    add_dataset(garden)
    feedback(garden, "correction", turn(garden, "Q?", "A."), text="Better answer.")
    assert cli("grow", "--no-train", "--garden", garden.root).exit_code == 0
    result = cli("grow", "--no-train", "--dataset", "dogs", "--garden", garden.root)
    assert result.exit_code == 2
    assert "still open" in result.stderr and "'cats'" in result.stderr


def test_a_dataset_in_the_knowledge_base_is_refreshed_with_the_new_records(garden):
    from bonsai.rag.notes import add_dataset as add_dataset_notes

    add_dataset(garden)
    add_dataset_notes(garden, DATASET)
    fix = feedback(
        garden, "correction", turn(garden, "Can Mochi eat tuna?", "Yes."), text="Only a little."
    )
    result = grow(garden, NO_TRAIN)
    assert any("refreshed in the knowledge base" in n for n in result.notes)
    record_id = feedback_rows(garden)[fix][1]
    anchors = {
        row[0]
        for row in garden.db.execute(
            "SELECT c.anchor FROM knowledge_chunks c JOIN knowledge_documents d"
            " ON d.id = c.document_id WHERE d.source = ?",
            (f"dataset:{DATASET}",),
        )
    }
    assert record_id in anchors and len(anchors) == 17
