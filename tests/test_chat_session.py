"""Chat sessions on a tiny model: prompts, retrieval with citations, modes, logging, feedback."""

from __future__ import annotations

from pathlib import Path

import pytest
from generate_support import inference_thread_count  # noqa: F401

from bonsai.chat import ChatArgs, ChatSession, store
from bonsai.chat.prompts import Q2Q_INSTRUCTIONS
from bonsai.chat.session import CompletionSplitter
from bonsai.errors import BonsaiError
from bonsai.garden import Garden
from bonsai.generate import GenerateArgs
from bonsai.generate.engine import TransformersGenerator
from bonsai.generate.prompting import get_layout
from bonsai.student import load_model, load_tokenizer

SAMPLE_NOTES = Path(__file__).resolve().parents[1] / "src" / "bonsai" / "sample" / "notes"
QUESTION = "What does Mochi eat every day?"
SHORT = GenerateArgs(max_new_tokens=16, seed=0)


@pytest.fixture(scope="module")
def engine(tiny_model_dir: Path) -> TransformersGenerator:
    name = str(tiny_model_dir)
    return TransformersGenerator(load_model(name), load_tokenizer(name), model_id="tiny")


def session_for(garden: Garden, engine: TransformersGenerator, layout: str = "alpaca", **args):
    return ChatSession(
        garden.db,
        engine,
        get_layout(layout),
        run_id="base",
        base_model="tiny",
        args=ChatArgs(generate=SHORT, **args),
    )


def add_sample_notes(garden: Garden, monkeypatch: pytest.MonkeyPatch) -> None:
    from bonsai.rag.embed import HashingEncoder
    from bonsai.rag.notes import add_paths

    monkeypatch.setenv("BONSAI_EMBED_MODEL", "hashing")  # instant, no model weights
    add_paths(garden, [SAMPLE_NOTES], encoder=HashingEncoder())


def test_a_turn_is_streamed_and_logged_once_with_its_context(
    garden: Garden, engine: TransformersGenerator
) -> None:
    session = session_for(garden, engine)
    deltas: list[tuple[str, str]] = []
    turn = session.ask(QUESTION, on_delta=lambda kind, text: deltas.append((kind, text)))
    assert {kind for kind, _ in deltas} == {"answer"}
    assert "".join(text for _, text in deltas).strip() == turn.answer
    (logged,) = store.list_turns(garden.db)
    assert logged == turn.log
    assert logged.prompt == QUESTION and QUESTION in logged.rendered_prompt
    assert logged.language == "en" and logged.mode == "answer" and logged.status == "ok"
    assert logged.settings["generate"]["max_new_tokens"] == 16
    assert "\n### " in logged.settings["generate"]["stop"]  # the layout's stop was added
    assert logged.retrieved == [] and "Notes:" not in logged.rendered_prompt  # no notes yet
    assert logged.completion_tokens and logged.latency_s is not None


def test_retrieved_notes_go_into_the_prompt_and_are_cited(
    garden: Garden, engine: TransformersGenerator, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_sample_notes(garden, monkeypatch)
    session = session_for(garden, engine, k=3)
    turn = session.ask("What wet food does Mochi eat for breakfast?")
    assert 1 <= len(turn.hits) <= 3
    refs = turn.log.retrieved
    assert refs[0]["citation"].startswith("notes/") or "sample" in refs[0]["source"]
    # The notes are in the prompt as clean text with a label; the file paths are for the person.
    assert all(hit.text.strip()[:40] in turn.log.rendered_prompt for hit in turn.hits)
    assert "### Notes:\n[1] " in turn.log.rendered_prompt
    assert not any(ref["source"] in turn.log.rendered_prompt for ref in refs)
    assert turn.log.settings["rag"] is True
    plain = session.ask("What wet food does Mochi eat for breakfast?", rag=False)
    assert plain.log.retrieved == [] and "Notes:" not in plain.log.rendered_prompt


def test_question_to_question_mode(garden: Garden, engine: TransformersGenerator) -> None:
    alpaca = session_for(garden, engine, mode="q2q")
    turn = alpaca.ask("猫の健康について知りたいです。")
    # The base layout does not show the category: the instruction spells the mode out.
    assert turn.log.mode == "question_to_question" and turn.log.language == "ja"
    assert Q2Q_INSTRUCTIONS["ja"] in turn.log.rendered_prompt
    assert "Question: 猫の健康について知りたいです。" in turn.log.rendered_prompt
    bonsai = session_for(garden, engine, layout="bonsai")
    turn = bonsai.ask("猫の健康について知りたいです。", mode="q2q")
    assert "### Category: question_to_question" in turn.log.rendered_prompt
    assert Q2Q_INSTRUCTIONS["ja"] not in turn.log.rendered_prompt  # the category says it
    answer = bonsai.ask("猫の健康について知りたいです。")
    assert answer.log.category != "question_to_question"
    with pytest.raises(BonsaiError, match="unknown mode"):
        bonsai.ask("x", mode="poetry")


def test_failures_and_cancellations_are_logged_too(
    garden: Garden, tiny_model_dir: Path, engine: TransformersGenerator
) -> None:
    name = str(tiny_model_dir)
    small = TransformersGenerator(
        load_model(name), load_tokenizer(name), model_id="tiny", max_context=40
    )
    session = session_for(garden, small)
    with pytest.raises(BonsaiError, match="prompt is"):
        session.ask("Mochi " * 60)
    (failed,) = store.list_turns(garden.db)
    assert failed.status == "error" and "prompt is" in (failed.error or "")
    streamed: list[str] = []
    session = session_for(garden, engine)
    turn = session.ask(
        QUESTION,
        generate_args=GenerateArgs(max_new_tokens=200, seed=1),
        on_delta=lambda _, text: streamed.append(text),
        should_stop=lambda: len(streamed) >= 2,
    )
    assert turn.log.status == "cancelled" and turn.generation.finish_reason == "cancelled"
    assert turn.answer == "".join(streamed).strip()
    assert [t.status for t in store.list_turns(garden.db)] == ["error", "cancelled"]


def test_feedback_on_the_last_turn(garden: Garden, engine: TransformersGenerator) -> None:
    session = session_for(garden, engine)
    with pytest.raises(BonsaiError, match="no answer"):
        session.rate(True)
    turn = session.ask(QUESTION)
    session.rate(False, "it ignored the question")
    session.correct("Mochi eats wet food twice a day.")
    session.remember("Mochi is allergic to chicken.")
    kinds = [(f.kind, f.turn_id) for f, _ in store.pending_feedback(garden.db)]
    assert kinds == [("bad", turn.id), ("correction", turn.id), ("experience", turn.id)]


def test_splitter_routes_reasoning_and_answer() -> None:
    seen: list[tuple[str, str]] = []
    splitter = CompletionSplitter(True, lambda kind, text: seen.append((kind, text)))
    for piece in ["You should ", "check her bowl.\n\n### Resp", "onse:\n", "Twice ", "a day."]:
        splitter.feed(piece)
    reasoning = "".join(t for k, t in seen if k == "reasoning")
    answer = "".join(t for k, t in seen if k == "answer")
    assert reasoning.strip() == "You should check her bowl."
    assert answer == "Twice a day."
    assert get_layout("bonsai").parse("You should x.\n### Response:\nA")[1] == "A"


def test_a_second_rating_replaces_the_first(garden: Garden, engine: TransformersGenerator) -> None:
    session = session_for(garden, engine)
    first = session.ask(QUESTION)
    session.rate(True, "right")
    session.rate(False, "on second thought, wrong")
    second = session.ask("And at night?")
    session.rate(True)
    session.correct("Dry food.")
    pending = [(f.kind, f.turn_id, f.reason) for f, _ in store.pending_feedback(garden.db)]
    assert pending == [
        ("bad", first.id, "on second thought, wrong"),
        ("good", second.id, ""),
        ("correction", second.id, ""),
    ]
    # A rating the grow stage has used is history: a new one does not remove it.
    (used,) = [f.id for f, _ in store.pending_feedback(garden.db) if f.turn_id == first.id]
    store.mark_feedback(garden.db, [used], "used", used_by="round-1")
    session.rate(True, turn_id=first.id)
    kinds = [(f.kind, f.status) for f in store.feedback_for(garden.db, [first.id])[first.id]]
    assert kinds == [("bad", "used"), ("good", "pending")]


def test_an_interrupted_answer_is_logged_as_cancelled_with_what_was_written(
    garden: Garden, engine: TransformersGenerator
) -> None:
    session = session_for(garden, engine)
    shown: list[str] = []

    def show(kind: str, text: str) -> None:
        shown.append(text)
        if len(shown) == 3:
            raise KeyboardInterrupt  # Ctrl-C while the answer is being written

    with pytest.raises(KeyboardInterrupt):
        session.ask(QUESTION, generate_args=GenerateArgs(max_new_tokens=100, seed=2), on_delta=show)
    (turn,) = store.list_turns(garden.db)
    assert turn.status == "cancelled" and turn.finish_reason == "cancelled"
    assert turn.answer == "".join(shown).strip() and turn.answer


def test_a_text_given_with_the_question_is_the_records_input(
    garden: Garden, engine: TransformersGenerator
) -> None:
    """As in a closed_qa record: the request is the instruction, the text under it the input."""
    session = session_for(garden, engine, layout="bonsai-multitask")
    report = "Ms. Sato's visit report, 4 August: Mochi stayed under the bed the whole time."
    turn = session.ask(f"According to this report, where did Mochi spend the visit?\n\n{report}")
    prompt = turn.log.rendered_prompt
    assert "### Category: closed_qa" in prompt and turn.log.category == "closed_qa"
    assert (
        "### Instruction:\nAccording to this report, where did Mochi spend the visit?\n\n"
        f"### Input:\n{report}\n\n### Response:\n"
    ) in prompt
    assert turn.log.prompt.endswith(report)  # the log keeps the message as it was typed
    # A message that leads up to its question stays one instruction.
    whole = session.ask("She eats two pouches a day.\n\nIs that enough?")
    assert "### Input:" not in whole.log.rendered_prompt


def test_warm_loads_what_a_first_question_waits_for(
    garden: Garden, engine: TransformersGenerator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bonsai.curate import language
    from bonsai.rag import embed

    add_sample_notes(garden, monkeypatch)
    fresh = language.LanguageDetector()
    monkeypatch.setattr(language, "default_detector", lambda low_accuracy=False: fresh)
    loaded: list[str] = []
    real_load = embed.load_encoder
    monkeypatch.setattr(
        embed, "load_encoder", lambda *a, **k: loaded.append("encoder") or real_load(*a, **k)
    )
    session = session_for(garden, engine)
    assert fresh._lingua is None
    session.warm()
    assert fresh._lingua is not None  # the statistical models are loaded
    assert loaded == ["encoder"]  # the notes' encoder too
    assert store.list_turns(garden.db) == []  # warming is not a turn


class PriorRecorder:
    """The tiny engine, noting the prior prompt each answer is weighed against."""

    def __init__(self, engine: TransformersGenerator) -> None:
        self.engine = engine
        self.priors: list[str | None] = []

    @property
    def max_context(self) -> int:
        return self.engine.max_context

    def count_tokens(self, text: str) -> int:
        return self.engine.count_tokens(text)

    def stream(self, prompt: str, args: GenerateArgs, *, prior: str | None = None):
        self.priors.append(prior)
        return self.engine.stream(prompt, args, prior=prior)


def test_an_answer_is_weighed_against_the_prompt_without_its_notes_and_given_text(
    garden: Garden, engine: TransformersGenerator, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_sample_notes(garden, monkeypatch)
    recorder = PriorRecorder(engine)
    session = ChatSession(
        garden.db,
        recorder,
        get_layout("bonsai-multitask"),
        run_id="base",
        base_model="tiny",
        args=ChatArgs(generate=SHORT, k=3),
    )
    with_notes = session.ask("What wet food does Mochi eat for breakfast?")
    prior = recorder.priors[-1]
    assert prior is not None and "### Notes:" in with_notes.log.rendered_prompt
    assert "### Notes:" not in prior
    prompt = with_notes.log.rendered_prompt
    assert (
        prior == prompt[: prompt.index("### Notes:")] + prompt[prompt.index("### Instruction:") :]
    )
    assert "### Instruction:\nWhat wet food does Mochi eat for breakfast?" in prior
    report = "Ms. Sato's visit report, 4 August: Mochi stayed under the bed the whole time."
    session.ask(
        f"According to this report, where did Mochi spend the visit?\n\n{report}", rag=False
    )
    given_prior = recorder.priors[-1]
    assert given_prior is not None and report not in given_prior
    assert "### Category: closed_qa" in given_prior  # the same record, less its text
    session.ask("What wet food does Mochi eat for breakfast?", rag=False)
    assert recorder.priors[-1] is None  # nothing to weigh against
    # A translation's source is its own text: it is not weighed towards the notes.
    translation = session.ask("英語に訳してください：もちは毎朝ウェットフードを食べます。")
    assert translation.log.category == "translation" and translation.log.retrieved
    assert recorder.priors[-1] is None
    off = GenerateArgs(max_new_tokens=8, seed=0, context_weight=0.0)
    session.ask("What wet food does Mochi eat for breakfast?", generate_args=off)
    assert recorder.priors[-1] is None


def test_a_question_read_from_the_notes_sees_the_lines_closest_to_it(
    garden: Garden, engine: TransformersGenerator, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_sample_notes(garden, monkeypatch)
    session = session_for(garden, engine, k=3)
    turn = session.ask("What wet food does Mochi eat for breakfast?")
    assert turn.log.category == "open_qa"
    # Each section in the prompt is at most three of its statements, one per line.
    assert turn.hits and all(
        len(hit.text.splitlines()) <= 3 for hit in turn.hits if hit.kind == "file"
    )
    assert all(hit.text in turn.log.rendered_prompt for hit in turn.hits)
    whole = session_for(garden, engine, k=3, focus=0).ask(
        "What wet food does Mochi eat for breakfast?"
    )
    # The same sections, ranked alike; shorter, more of them fit the notes budget.
    assert [h.chunk_id for h in turn.hits][: len(whole.hits)] == [h.chunk_id for h in whole.hits]
    assert any(len(hit.text.splitlines()) > 3 for hit in whole.hits)


def test_only_reading_questions_are_focused(
    garden: Garden, engine: TransformersGenerator, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_sample_notes(garden, monkeypatch)
    calls: list[tuple[str, int]] = []

    def focus(question: str, hits: list, keep: int) -> list:
        calls.append((question, keep))
        return hits

    session = ChatSession(
        garden.db,
        engine,
        get_layout("alpaca"),
        run_id="base",
        args=ChatArgs(generate=SHORT, k=3),
        focus=focus,
    )
    session.ask("What wet food does Mochi eat for breakfast?")
    assert calls == [("What wet food does Mochi eat for breakfast?", 3)]
    session.ask("英語に訳してください：もちは毎朝ウェットフードを食べます。")
    session.ask("Should Mochi eat more?", mode="q2q")
    session.ask("What wet food does Mochi eat for breakfast?", rag=False)
    assert len(calls) == 1  # a translation, q2q and no notes: sections as they are
    with pytest.raises(BonsaiError, match="focus"):
        ChatArgs(focus=-1)
