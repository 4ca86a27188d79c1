"""bench/garden_quality.py without a model: finding a garden's files, and scoring saved replies
again (--rescore)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
import garden_quality  # noqa: E402


def test_find_garden_takes_a_folder_or_a_records_file(tmp_path: Path) -> None:
    sourdough = REPO / "bench" / "gardens" / "sourdough"
    assert garden_quality.find_garden(sourdough) == (
        sourdough / "records.jsonl",
        sourdough / "notes",
    )
    sample = REPO / "src" / "bonsai" / "sample"
    assert garden_quality.find_garden(sample) == (sample / "cat-care.jsonl", sample / "notes")
    lone = tmp_path / "mine.jsonl"
    lone.write_text("{}\n", encoding="utf-8")
    assert garden_quality.find_garden(lone) == (lone, None)
    (tmp_path / "other.jsonl").write_text("{}\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="exactly one"):
        garden_quality.find_garden(tmp_path)


def test_rescore_scores_saved_replies_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    questions = tmp_path / "q.jsonl"
    rows = [
        {"id": "f", "category": "open_qa", "question": "How many?", "accepted": ["52"]},
        {
            "id": "l",
            "category": "classification",
            "question": "A or B?",
            "labels": ["A", "B"],
            "accepted": ["B"],
        },
        {
            "id": "t",
            "category": "translation",
            "question": "英語に：パン",
            "target_language": "en",
            "accepted": ["Bread."],
        },
        {"id": "q", "category": "question_to_question", "question": "Why?"},
    ]
    questions.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    replies = {
        "tuned": {"f": "52 loaves.", "l": "B.", "t": "Bread.", "q": "When? Where?"},
        "base": {"f": "[1] notes/log.md > Log\n52 loaves", "l": "A", "t": "パン", "q": "No."},
    }
    saved = tmp_path / "answers.json"
    models = {
        label: {"run": label, "answers": [{"id": i, "reply": r} for i, r in answers.items()]}
        for label, answers in replies.items()
    }
    saved.write_text(json.dumps({"seconds": 1.0, "models": models}), encoding="utf-8")

    assert garden_quality.main(["unused", str(questions), "--rescore", str(saved)]) == 0
    out = capsys.readouterr().out
    assert (
        "RESULT facts=1/1 closed=0/0 labels=1/1 translation_lang=1/1 chrf=100.0 q2q=1/1 "
        "loops=0/4 model=tuned run=tuned"
    ) in out
    assert "RESULT facts=1/1 closed=0/0 labels=0/1 translation_lang=0/1" in out
    report = json.loads(saved.read_text(encoding="utf-8"))
    assert report["models"]["base"]["summary"]["echoes"] == [1, 4]
    assert report["models"]["tuned"]["answers"][1]["label"] == "B"


def test_rescore_refuses_a_file_without_every_reply(tmp_path: Path) -> None:
    questions = tmp_path / "q.jsonl"
    questions.write_text(
        json.dumps({"id": "f", "category": "open_qa", "question": "?", "accepted": ["1"]}) + "\n",
        encoding="utf-8",
    )
    saved = tmp_path / "answers.json"
    saved.write_text(json.dumps({"seconds": 1, "models": {"tuned": {"run": "r", "answers": []}}}))
    with pytest.raises(SystemExit, match="no replies to f"):
        garden_quality.main(["unused", str(questions), "--rescore", str(saved)])


def test_turn_logs_add_the_prompt_and_chat_guesses(tmp_path: Path) -> None:
    import sqlite3

    conn = sqlite3.connect(tmp_path / "garden.db")
    conn.execute("CREATE TABLE chat_turns (id, rendered_prompt, category, language)")
    conn.execute("INSERT INTO chat_turns VALUES ('t1', 'the prompt', 'closed_qa', 'en')")
    conn.commit()
    conn.close()
    answers = [{"id": "a", "turn_id": "t1"}, {"id": "b", "turn_id": "gone"}]
    garden_quality.add_turn_logs(tmp_path, answers)
    assert answers[0]["prompt"] == "the prompt"
    assert (answers[0]["chat_category"], answers[0]["chat_language"]) == ("closed_qa", "en")
    assert "prompt" not in answers[1]
    garden_quality.add_turn_logs(tmp_path / "nowhere", answers)  # skipped, with a message


def _questions(tmp_path: Path) -> Path:
    path = tmp_path / "q.jsonl"
    row = {"id": "f", "category": "open_qa", "question": "How many?", "accepted": ["52"]}
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--models", "tuned,parent"], "choose from tuned, stock, base"),
        (["--models", ","], "choose from"),
        (["--reuse", "nowhere", "--train-arg=--epochs=1"], "takes no --keep or --train-arg"),
        (["--reuse", "{tmp}"], "not a garden"),
    ],
)
def test_wrong_models_or_reuse_stop_before_anything_runs(
    tmp_path: Path, extra: list[str], message: str
) -> None:
    garden = REPO / "bench" / "gardens" / "sourdough"
    args = [str(garden), str(_questions(tmp_path))]
    args += [part.replace("{tmp}", str(tmp_path)) for part in extra]
    with pytest.raises(SystemExit, match=message):
        garden_quality.main(args)


def test_the_stock_is_the_nursery_run_the_latest_round_continued(tmp_path: Path) -> None:
    from bonsai.garden import Garden
    from bonsai.runs import RunManifest, create_run

    garden = Garden.init(tmp_path / "garden")
    for created, (name, parent) in enumerate(
        (("nursery-1", None), ("round-1", "nursery-1"), ("round-2", "round-1"))
    ):
        create_run(garden, RunManifest(id=name, dataset="d", parent=parent, created_at=created))
    assert garden_quality.stock_run(garden.root) == "nursery-1"
    create_run(garden, RunManifest(id="fresh", dataset="d", parent="base", created_at=9))
    with pytest.raises(SystemExit, match="does not grow from the nursery stock"):
        garden_quality.stock_run(garden.root)
    garden.close()
