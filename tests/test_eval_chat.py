"""`bonsai eval` asks as `bonsai chat` asks: the same prompt (with the notes retrieval finds), the
same answer; `--no-rag` leaves the notes out; a record's own chunk is never retrieved for it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bonsai.chat import ChatArgs, ChatSession
from bonsai.chat.session import garden_retriever
from bonsai.curate.importer import import_file
from bonsai.curate.split import SplitArgs, split_dataset
from bonsai.db import connect
from bonsai.evaluate.args import BASE, EvalArgs
from bonsai.evaluate.asking import EvalRetriever, chat_mode
from bonsai.evaluate.runner import evaluate, generation_args
from bonsai.garden import Garden
from bonsai.generate.loading import choose_run, load_generator
from bonsai.sample import records_path
from bonsai.store import RecordStore
from bonsai.train.args import TrainArgs
from bonsai.train.loop import train

SAMPLE_NOTES = Path(__file__).resolve().parents[1] / "src" / "bonsai" / "sample" / "notes"
NOTES_HEADERS = ("Notes:", "メモ:", "笔记:")


@pytest.fixture(scope="module")
def noted(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path):
    """A garden with the sample records (split), the sample notes in its knowledge base (the
    instant hashing encoder) and a one-step run on a tiny model."""
    import torch

    from bonsai.rag.embed import HashingEncoder
    from bonsai.rag.notes import add_paths

    threads = torch.get_num_threads()
    env = pytest.MonkeyPatch()
    env.setenv("BONSAI_EMBED_MODEL", "hashing")  # no model weights, at indexing and at query
    garden = Garden.init(tmp_path_factory.mktemp("eval-chat") / "garden")
    import_file(garden, records_path(), "cats")
    split_dataset(RecordStore(garden.db), "cats", SplitArgs(val=0.1))
    add_paths(garden, [SAMPLE_NOTES], encoder=HashingEncoder())
    args = TrainArgs(
        dataset="cats", layout="alpaca", base_model=str(tiny_model_dir), max_steps=1,
        max_length=128, batch_tokens=512, micro_tokens=512, precision="fp32", threads=1,
        lora_rank=4,
    )  # fmt: skip
    run = train(garden, args)
    assert run is not None and run.status == "finished"
    yield garden, run.id
    garden.close()
    env.undo()
    torch.set_num_threads(threads)


def _eval_args(run_id: str, **overrides) -> EvalArgs:
    settings = dict(
        run=run_id, against=[BASE], max_items=4, max_probes=3, seed_probes=0,
        max_new_tokens=4, losses=False, bootstrap_samples=50,
    )  # fmt: skip
    return EvalArgs(**{**settings, **overrides})


def test_eval_prompt_and_answer_are_chats(noted, tmp_path: Path) -> None:
    garden, run_id = noted
    outcome = evaluate(garden, _eval_args(run_id, out=tmp_path))
    items = outcome.results["items"]
    chat_settings = outcome.results["settings"]["chat"]
    assert chat_settings["rag"] is True and chat_settings["prompts_with_notes"] >= 1
    noted_items = [i for i in items if i["answers"]["tuned"]["chat"]["notes"]]
    assert noted_items, "retrieval found notes for no question"

    # The same questions asked in `bonsai chat` on the same run and garden, greedily.
    loaded = load_generator(choose_run(garden, run_id))
    session = ChatSession(
        connect(":memory:"),
        loaded.engine,
        loaded.layout,
        run_id=run_id,
        args=ChatArgs(generate=generation_args("alpaca", _eval_args(run_id))),
        retriever=garden_retriever(garden.db),
    )
    for item in items[:3] + noted_items[:1]:
        asked = item["answers"]["tuned"]
        turn = session.ask(item["question"], mode=asked["chat"]["mode"])
        assert asked["prompt"] == turn.log.rendered_prompt
        assert asked["text"] == turn.answer
        assert asked["chat"]["notes"] == [r["citation"] for r in turn.log.retrieved]
        assert asked["chat"]["category"] == turn.log.category
    prompt = noted_items[0]["answers"]["tuned"]["prompt"]
    assert any(header in prompt for header in NOTES_HEADERS)
    # The base model is asked the same prompt (the run's layout), and the question is what a
    # person would type: the instruction, then the text it is about.
    for item in items:
        assert item["answers"]["base"]["prompt"] == item["answers"]["tuned"]["prompt"]
        assert item["question"].startswith(item["instruction"].strip())
        if item["input"]:
            assert item["question"].endswith(item["input"].strip())
    # Nothing was written to the garden's chat log.
    assert garden.db.execute("SELECT COUNT(*) FROM chat_turns").fetchone()[0] == 0


def test_no_rag_leaves_the_notes_out(noted, cli, tmp_path: Path) -> None:
    garden, run_id = noted
    result = cli(
        "eval", run_id, "--against", "base", "--no-rag", "--no-builtin-probes",
        "--seed-probes", "0", "--max-items", "4", "--max-new-tokens", "4", "--no-losses",
        "--out", tmp_path, "--garden", garden.root,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "notes off" in result.stdout and "Side by side" in result.stdout
    (report,) = tmp_path.glob("report-*.json")
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["settings"]["chat"]["rag"] is False
    assert data["settings"]["chat"]["prompts_with_notes"] == 0
    for item in data["items"]:
        for answer in item["answers"].values():
            assert answer["chat"]["notes"] == []
            assert not any(header in answer["prompt"] for header in NOTES_HEADERS)
    html = report.with_suffix(".html").read_text(encoding="utf-8")
    assert "without notes (--no-rag)" in html


def test_a_record_is_not_asked_with_its_own_chunk(garden: Garden, monkeypatch) -> None:
    from bonsai.rag.embed import HashingEncoder
    from bonsai.rag.notes import add_dataset

    monkeypatch.setenv("BONSAI_EMBED_MODEL", "hashing")
    import_file(garden, records_path(), "cats")
    add_dataset(garden, "cats", encoder=HashingEncoder())
    record = RecordStore(garden.db).records("cats")[5]
    own = f"dataset:cats#{record.id}"
    question = record.instruction
    assert own in [h.source for h in garden_retriever(garden.db)(question, 4)]  # chat finds it
    retriever = EvalRetriever(garden.db)
    retriever.leave_out = record.id
    hits = retriever(question, 4)
    assert len(hits) == 4 and own not in [h.source for h in hits]
    assert retriever.left_out == {record.id}
    retriever.leave_out = None  # a probe: nothing is left out
    assert own in [h.source for h in retriever(question, 4)]


def test_question_to_question_items_are_asked_in_q2q_mode() -> None:
    from bonsai.evaluate.scoring import Item

    item = Item("x", "val", "question_to_question", "en", "Should I get a second cat?", "", "")
    assert chat_mode(item) == "question_to_question"
    assert chat_mode(Item("y", "val", "closed_qa", "en", "How heavy?", "4.2 kg", "")) == "answer"
