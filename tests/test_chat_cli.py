"""The terminal chat driven line by line, ``bonsai chat --once`` and ``bonsai logs``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from generate_support import inference_thread_count  # noqa: F401
from rich.console import Console

from bonsai.chat import ChatArgs, ChatSession, store
from bonsai.chat.repl import Repl
from bonsai.garden import Garden
from bonsai.generate import GenerateArgs
from bonsai.generate.engine import TransformersGenerator
from bonsai.generate.prompting import get_layout
from bonsai.student import load_model, load_tokenizer
from bonsai.util.text import terminal_safe


@pytest.fixture
def tiny_garden(garden: Garden, tiny_model_dir: Path) -> Garden:
    config = garden.config
    config.student.base_model = str(tiny_model_dir)
    config.save(garden.config_path)
    garden.__dict__.pop("config", None)
    return garden


def scripted(lines: list[str]):
    queue = list(lines)

    def read(prompt: str) -> str | None:
        return queue.pop(0) if queue else None

    return read


def test_the_chat_loop_takes_questions_and_every_kind_of_feedback(
    tiny_garden: Garden, tiny_model_dir: Path
) -> None:
    name = str(tiny_model_dir)
    engine = TransformersGenerator(load_model(name), load_tokenizer(name), model_id="tiny")
    session = ChatSession(
        tiny_garden.db,
        engine,
        get_layout("alpaca"),
        run_id="base",
        args=ChatArgs(generate=GenerateArgs(max_new_tokens=12, seed=0)),
    )
    console = Console(record=True, width=120, color_system=None)
    lines = [
        "/good",  # nothing to rate yet: an error, and the loop goes on
        "What does Mochi eat every day?",
        "/good short and right",
        "/bad",
        "it forgot the evening meal",
        "/correct",
        "Wet food in the morning,",
        "dry food at night.",
        ".",
        "/remember Mochi hates the vacuum cleaner.",
        "/mode q2q",
        "/rag off",
        "猫の健康について知りたいです。",
        "/sources",
        "/frobnicate",
        "/quit",
        "never read",
    ]
    Repl(session, console, scripted(lines)).run()
    out = console.export_text()
    turns = store.list_turns(tiny_garden.db)
    assert [t.mode for t in turns] == ["answer", "question_to_question"]
    assert turns[1].settings["rag"] is False
    feedback = [(f.kind, f.text, f.reason) for f, _ in store.pending_feedback(tiny_garden.db)]
    assert feedback == [
        ("bad", "", "it forgot the evening meal"),  # the later rating replaced /good
        ("correction", "Wet food in the morning,\ndry food at night.", ""),
        ("experience", "Mochi hates the vacuum cleaner.", ""),
    ]
    assert all(f.turn_id == turns[0].id for f, _ in store.pending_feedback(tiny_garden.db))
    assert "there is no answer to rate yet" in out
    assert "Mode: q2q" in out and "Notes: off" in out
    assert "was given no notes" in out
    assert "Unknown command /frobnicate" in out
    assert "never read" not in out


def test_chat_once_then_logs(cli, tiny_garden: Garden) -> None:
    result = cli(
        "chat", "--once", "What does Mochi eat every day?", "--max-tokens", "8",
        "--deterministic", "--garden", tiny_garden.root,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (turn,) = store.list_turns(tiny_garden.db)
    # The answer alone on stdout (control characters shown inert); the rest on stderr.
    assert result.stdout == terminal_safe(turn.answer) + "\n"
    assert f"turn {turn.id}" in result.stderr
    assert turn.settings["generate"]["deterministic"] is True
    table = cli("logs", "--garden", tiny_garden.root)
    assert table.exit_code == 0 and "What does Mochi eat" in table.stdout
    raw = cli("logs", "--json", "--garden", tiny_garden.root)
    (item,) = json.loads(raw.stdout)
    assert item["id"] == turn.id and item["rendered_prompt"] == turn.rendered_prompt
    assert item["feedback"] == []


def test_chat_errors_are_one_line(cli, tiny_garden: Garden) -> None:
    unknown = cli("chat", "--run", "run-404", "--once", "hi there", "--garden", tiny_garden.root)
    assert unknown.exit_code == 2 and "no run 'run-404'" in unknown.stderr
    assert "Traceback" not in unknown.output
    mode = cli("chat", "--mode", "poetry", "--once", "hi there", "--garden", tiny_garden.root)
    assert mode.exit_code == 2 and "unknown mode 'poetry'" in mode.stderr
    precision = cli("chat", "--precision", "fp8", "--once", "hi there", "-g", tiny_garden.root)
    assert precision.exit_code == 2 and "unknown precision 'fp8'" in precision.stderr
    focus = cli("chat", "--focus", "-1", "--once", "hi there", "--garden", tiny_garden.root)
    assert focus.exit_code == 2 and "--focus" in focus.stderr
    empty = cli("logs", "--garden", tiny_garden.root)
    assert empty.exit_code == 0 and "No chat exchanges yet" in empty.stdout


def test_the_focus_help_shows_the_default_chat_uses() -> None:
    from bonsai.cli.chat import FOCUS_DEFAULT

    assert str(ChatArgs().focus) == FOCUS_DEFAULT


def test_reasoning_is_labelled_and_kept_off_the_answer_console() -> None:
    from bonsai.chat.repl import _AnswerView

    answer = Console(record=True, width=80, color_system=None)
    notices = Console(record=True, width=80, color_system=None)
    view = _AnswerView(answer, notices)
    for kind, text in [
        ("reasoning", "She eats "),
        ("reasoning", "twice."),
        ("answer", "Wet food."),
    ]:
        view.delta(kind, text)
    view.end()
    assert answer.export_text() == "Wet food.\n"
    assert notices.export_text() == "reasoning: She eats twice.\n"


def test_sources_are_shown_relative_to_the_garden(tmp_path: Path) -> None:
    from bonsai.chat.repl import display_source

    root = tmp_path / "garden"
    assert display_source(f"{root}/notes/cat.md#feeding", root) == "notes/cat.md#feeding"
    assert display_source(f"{tmp_path}/notes/cat.md", root) == "../notes/cat.md"
    assert display_source("notes/cat.md", root) == "notes/cat.md"
    assert display_source("dataset:cats#r-1", root) == "dataset:cats#r-1"
    home = Path.home()
    assert display_source(f"{home}/a/b/c/d/cat.md", Path("/srv/x/y/z")) == "~/a/b/c/d/cat.md"


def test_once_streamed_without_an_answer_header_still_prints_the_answer(
    tiny_garden: Garden, tiny_model_dir: Path
) -> None:
    name = str(tiny_model_dir)
    engine = TransformersGenerator(load_model(name), load_tokenizer(name), model_id="tiny")
    session = ChatSession(
        tiny_garden.db,
        engine,
        get_layout("bonsai"),  # the model writes its reasoning, then '### Response:'
        run_id="base",
        args=ChatArgs(generate=GenerateArgs(max_new_tokens=12, seed=0)),
    )
    answer = Console(record=True, width=120, color_system=None)
    notices = Console(record=True, width=120, color_system=None)
    repl = Repl(session, answer, scripted([]), notices=notices)
    turn = repl.ask("What does Mochi eat every day?", stream=True)
    assert turn is not None and turn.reasoning is None  # the tiny model never wrote the header
    assert answer.export_text() == turn.answer + "\n"
    assert notices.export_text().startswith("reasoning: ")


def test_a_failed_background_load_ends_the_chat_with_its_error(tiny_garden: Garden) -> None:
    from bonsai.errors import BonsaiError
    from bonsai.generate.loading import BackgroundGenerator

    def load() -> None:
        raise BonsaiError("could not apply the run's adapter: damaged", file="runs/r/adapter")

    session = ChatSession(
        tiny_garden.db, BackgroundGenerator("r", load), get_layout("alpaca"), run_id="r"
    )
    console = Console(record=True, width=120, color_system=None)
    repl = Repl(session, console, scripted(["/mode", "What does Mochi eat?", "never read"]))
    with pytest.raises(BonsaiError, match="damaged"):
        repl.run()
    assert "Mode: answer" in console.export_text()  # commands work while the model loads
    assert store.list_turns(tiny_garden.db) == []
