"""``bonsai chat`` as a person uses it: a real process in a pseudo-terminal, on a tiny model.

The first test asks two questions and uses every command (including the traps: a command given
where a reason is asked, a rating changed, a correction before any answer); the second stops an
answer with Ctrl-C and answers Ctrl-C at the prompt. Both check what the garden stored.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest

from bonsai.chat import store
from bonsai.garden import Garden

pexpect = pytest.importorskip("pexpect")

SRC = Path(__file__).resolve().parents[1] / "src"
SAMPLE_NOTES = SRC / "bonsai" / "sample" / "notes"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][0-9A-Za-z]|\r")
PROMPT = "you> "
MAX_START_S = 60  # generous: the machine running the tests may be busy


def plain(text: str) -> str:
    return ANSI.sub("", text)


def use_model(garden: Garden, model_dir: Path) -> Garden:
    config = garden.config
    config.student.base_model = str(model_dir)
    config.save(garden.config_path)
    garden.__dict__.pop("config", None)
    return garden


def spawn_chat(garden: Garden, *args: str):
    SCREEN.clear()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
        "NO_COLOR": "1",
        "COLUMNS": "200",
        "BONSAI_EMBED_MODEL": "hashing",
    }
    child = pexpect.spawn(
        sys.executable,
        ["-c", "from bonsai.cli import main; main()", "chat", "--garden", str(garden.root), *args],
        env=env,
        encoding="utf-8",
        timeout=MAX_START_S,
        dimensions=(50, 200),
        # Ctrl-C reaches the chat as it reaches a keeper's, even when the tests themselves run
        # with SIGINT ignored (started in the background by a shell, or under nohup).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    return child


SCREEN: list[str] = []
"""Everything the current test's chat showed, to check for noise at the end."""


def expect(child, text: str, timeout: float = MAX_START_S) -> str:
    """Wait for ``text`` (escape codes ignored); returns everything shown since the last call."""
    seen = ""
    deadline = time.monotonic() + timeout
    while text not in plain(seen):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"{text!r} never appeared; the screen showed:\n{plain(seen)}")
        try:
            seen += child.read_nonblocking(4096, timeout=min(left, 1.0))
        except pexpect.TIMEOUT:
            continue
        except pexpect.EOF:
            raise AssertionError(f"the chat ended before {text!r}:\n{plain(seen)}") from None
    SCREEN.append(plain(seen))
    return plain(seen)


def wait_for_answer_text(child, chars: int) -> None:
    """Read on until ``chars`` visible characters of the answer have appeared (after the line
    saying the student is loading, if it was)."""
    seen = ""
    deadline = time.monotonic() + MAX_START_S
    while len("".join(plain(seen).split("Loading the student…")[-1].split())) < chars:
        if time.monotonic() > deadline:
            raise AssertionError(f"no answer appeared; the screen showed:\n{plain(seen)}")
        try:
            seen += child.read_nonblocking(4096, timeout=1)
        except pexpect.TIMEOUT:
            continue


def send(child, line: str, until: str = PROMPT) -> str:
    child.sendline(line)
    return expect(child, until)


@pytest.fixture
def notes_garden(garden: Garden, tiny_model_dir: Path) -> Garden:
    """The tiny model and the sample notes, kept inside the garden's notes folder."""
    from bonsai.rag.embed import HashingEncoder
    from bonsai.rag.notes import add_paths

    use_model(garden, tiny_model_dir)
    shutil.copytree(SAMPLE_NOTES, garden.root / "notes", dirs_exist_ok=True)
    add_paths(garden, [garden.root / "notes"], encoder=HashingEncoder())
    return garden


def test_two_questions_and_every_command_in_a_terminal(notes_garden: Garden) -> None:
    child = spawn_chat(notes_garden, "--max-tokens", "8")
    start = expect(child, PROMPT)
    assert "Traceback" not in start and "Loading weights" not in start
    assert "Warning" not in start and "site-packages" not in start

    # Before any answer: refused at once, without asking for anything.
    assert "no answer to correct yet" in send(child, "/correct")
    assert "no answer to rate yet" in send(child, "/good")

    first = send(child, "What does Mochi eat every day?")
    assert "Sources:" in first
    assert re.search(r"\[1\] notes/[\w-]+\.md", first), first  # relative to the garden
    assert str(notes_garden.root) not in first

    assert "Noted as a good answer" in send(child, "/good short and right")
    # /bad asks why; a command given instead is run as one, not stored as the reason.
    assert "What was wrong?" in send(child, "/bad", until="What was wrong?")
    after = send(child, "/sources")
    assert "Noted as a bad answer" in after and "Sources:" in after
    assert "end with a line holding only '.'" in send(child, "/correct", until="... ")
    send(child, "Wet food in the morning,", until="... ")
    send(child, "dry food at night.", until="... ")
    assert "Correction stored" in send(child, ".")
    assert "Remembered" in send(child, "/remember Mochi hates the vacuum cleaner.")
    assert "Mode: q2q" in send(child, "/mode q2q")
    assert "Notes: off" in send(child, "/rag off")
    send(child, "猫の健康について知りたいです。")
    assert "was given no notes" in send(child, "/sources")
    shown = send(child, "/help")
    for command in ("/good", "/bad", "/correct", "/remember", "/mode", "/rag", "/sources"):
        assert command in shown
    assert "training needs nothing" in shown  # what /good is for
    assert "Unknown command /frobnicate" in send(child, "/frobnicate")
    child.sendline("/quit")
    child.expect(pexpect.EOF, timeout=30)
    child.close()
    assert child.exitstatus == 0
    screen = "".join(SCREEN)
    for noise in ("Traceback", "Warning", "Loading weights", "site-packages", "it/s]"):
        assert noise not in screen

    turns = store.list_turns(notes_garden.db)
    assert [t.mode for t in turns] == ["answer", "question_to_question"]
    assert turns[1].settings["rag"] is False
    feedback = [(f.kind, f.text, f.reason) for f, _ in store.pending_feedback(notes_garden.db)]
    assert feedback == [
        ("bad", "", ""),  # replaced the good rating; "/sources" is not its reason
        ("correction", "Wet food in the morning,\ndry food at night.", ""),
        ("experience", "Mochi hates the vacuum cleaner.", ""),
    ]
    assert {f.turn_id for f, _ in store.pending_feedback(notes_garden.db)} == {turns[0].id}


@pytest.fixture(scope="module")
def endless_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model that never ends its answers: its end token is one it cannot produce."""
    from transformers import AutoTokenizer

    from bonsai.student.tiny import build_tiny_model

    out = build_tiny_model(tmp_path_factory.mktemp("endless"), arch="gemma3")
    tokenizer = AutoTokenizer.from_pretrained(out)
    tokenizer.add_special_tokens({"eos_token": "<never>"})  # an id past the model's vocabulary
    tokenizer.save_pretrained(out)
    for name in ("config.json", "generation_config.json"):
        config = json.loads((out / name).read_text())
        config["eos_token_id"] = tokenizer.eos_token_id
        if name == "config.json":
            config["max_position_embeddings"] = 4096  # room for a long answer
        (out / name).write_text(json.dumps(config))
    return out


def test_ctrl_c_stops_an_answer_and_asks_before_leaving(
    garden: Garden, endless_model_dir: Path
) -> None:
    use_model(garden, endless_model_dir)
    child = spawn_chat(garden, "--max-tokens", "3000", "--temperature", "1.0", "--no-rag")
    expect(child, PROMPT)
    # A command answered first: the chat is reading its input (a loaded machine can take a
    # while to get there after drawing the prompt).
    assert "/quit" in send(child, "/help")

    # Ctrl-C at an empty prompt asks first; 'n' stays.
    child.sendcontrol("c")
    expect(child, "Leave the chat? [y/N]")
    send(child, "n")

    child.sendline("Tell me everything about Mochi.")
    expect(child, "Tell me everything about Mochi.")
    wait_for_answer_text(child, 30)
    child.sendcontrol("c")
    stopped = expect(child, PROMPT)
    assert "stopped: Ctrl-C" in stopped and "Traceback" not in stopped

    (turn,) = store.list_turns(garden.db)
    assert turn.status == "cancelled" and turn.finish_reason == "cancelled"
    assert len(turn.answer) >= 10 and (turn.completion_tokens or 0) < 3000
    # The stopped answer can still be rated and corrected.
    assert "Noted as a bad answer" in send(child, "/bad it rambled")

    child.sendcontrol("c")
    expect(child, "Leave the chat? [y/N]")
    child.sendcontrol("c")  # Ctrl-C again: leave
    child.expect(pexpect.EOF, timeout=30)
    child.close()
    assert child.exitstatus == 0
    assert "Traceback" not in "".join(SCREEN)
    assert [f.kind for f, _ in store.pending_feedback(garden.db)] == ["bad"]
