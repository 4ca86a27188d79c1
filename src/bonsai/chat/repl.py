"""The terminal chat loop: ask, watch the answer stream in, then rate, correct or remember.

Input comes from a ``read(prompt) -> str | None`` function (None at end of input; Ctrl-C raises
``KeyboardInterrupt`` out of it), so the loop runs the same against a keyboard and against a
list of lines in a test.

The answer goes to one console and everything else (reasoning, sources, notices) to another,
the same one in the terminal chat: ``bonsai chat --once`` prints only the answer on stdout.

Ctrl-C stops an answer (what was written is kept and logged as cancelled) and comes back to the
prompt; at the prompt it asks before leaving.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from bonsai.chat.prompts import Q2Q
from bonsai.chat.session import ChatSession, ChatTurn
from bonsai.errors import BonsaiError

Read = Callable[[str], "str | None"]

HELP = """Commands (about the last answer):
  /good [reason]     say it was right: kept in the log (`bonsai logs`); training needs nothing
                     from it, as the student already answers that way
  /bad [reason]      say it was wrong, and why: `bonsai grow` lists it for review until a
                     better answer (/correct) settles it
  /correct           write the better answer (several lines; end with a line holding only '.');
                     `bonsai grow` turns it into a training record
  /remember TEXT     keep a fact or experience: `bonsai grow` adds it to your notes
  /mode [answer|q2q] show or switch the mode (q2q answers with sharper questions)
  /rag [on|off]      show or switch retrieval over your notes
  /sources           show the notes the last answer was given
  /help              this list
  /quit              leave (Ctrl-D too)
A second /good or /bad on the same answer replaces the first. Ctrl-C stops an answer and keeps
what was written; at an empty prompt it asks before leaving."""

STOPPED = "(stopped: Ctrl-C; what was written is kept)"


@contextmanager
def ctrl_c_stops() -> Iterator[Callable[[], bool]]:
    """Inside, the first Ctrl-C only asks to stop (the function yielded then says True), so an
    answer can end cleanly between two tokens; a second one interrupts at once. Outside the
    main thread signals cannot be caught, and Ctrl-C keeps its usual effect."""
    pressed = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield pressed.is_set
        return

    def on_ctrl_c(signum: int, frame: Any) -> None:
        if pressed.is_set():
            raise KeyboardInterrupt
        pressed.set()

    previous = signal.signal(signal.SIGINT, on_ctrl_c)
    try:
        yield pressed.is_set
    finally:
        signal.signal(signal.SIGINT, previous)


def display_source(source: str, garden_root: Path | None) -> str:
    """A note's source as a person reads it: relative to the garden folder when inside it or a
    short walk from it (``notes/cat.md``, ``../notes/cat.md``), with ``~`` for the home folder
    otherwise; ``dataset:…`` sources as they are."""
    if garden_root is None or not source.startswith("/"):
        return source
    root = os.path.abspath(garden_root)
    relative = os.path.relpath(source, root)
    if relative.split(os.sep).count("..") <= 2:
        return relative
    home = os.path.expanduser("~")
    if source.startswith(home + os.sep):
        return "~" + source[len(home) :]
    return source


class _AnswerView:
    """Shows an answer as it streams: the reasoning labelled and dim (on the notices console),
    then the answer (on the answer console)."""

    def __init__(self, answer: Console, notices: Console) -> None:
        self.answer = answer
        self.notices = notices
        self.kind: str | None = None
        self.answered = False
        """Whether any of the answer was shown (not only reasoning)."""

    def delta(self, kind: str, text: str) -> None:
        if kind != self.kind:
            if self.kind is not None:
                self.notices.print()
            if kind == "reasoning":
                self.notices.print("reasoning: ", style="dim italic", end="")
            self.kind = kind
        self.answered = self.answered or kind == "answer"
        console = self.notices if kind == "reasoning" else self.answer
        style = "dim" if kind == "reasoning" else None
        console.print(escape(text), end="", style=style, highlight=False, soft_wrap=True)

    def whole(self, turn: ChatTurn) -> None:
        """The answer at once (nothing was streamed)."""
        if turn.reasoning:
            self.delta("reasoning", turn.reasoning)
        self.delta("answer", turn.answer)

    def end(self) -> None:
        """Finish the line the stream was on."""
        if self.kind is not None:
            (self.notices if self.kind == "reasoning" else self.answer).print()
            self.kind = None


class Repl:
    def __init__(
        self,
        session: ChatSession,
        console: Console,
        read: Read,
        *,
        notices: Console | None = None,
        garden_root: Path | None = None,
    ) -> None:
        """``console`` gets the answers; ``notices`` (default: the same) everything else.
        ``garden_root``: sources are shown relative to it."""
        self.session = session
        self.console = console
        self.notices = notices or console
        self.read = read
        self.garden_root = garden_root
        self.rag = session.args.rag

    # -- output ---------------------------------------------------------------------------

    def _say(self, text: str, style: str = "") -> None:
        self.notices.print(escape(text), style=style or None, highlight=False, soft_wrap=True)

    def show_turn(self, turn: ChatTurn, view: _AnswerView, *, streamed: bool) -> None:
        if not streamed:
            view.whole(turn)
        elif not view.answered and turn.answer:
            # The model never wrote its answer header, so what streamed as reasoning is, read
            # as a whole, the answer: it belongs on the answer console.
            if self.console is self.notices:
                view.end()
                self._say("(no answer section: the text above is the answer)", "yellow")
            else:
                view.delta("answer", turn.answer)
        view.end()
        reason = turn.generation.finish_reason
        if reason == "cancelled":
            self._say(STOPPED, "yellow")
        elif reason == "loop":
            self._say("(stopped: the answer started repeating itself)", "yellow")
        elif reason == "length":
            self._say("(stopped at the token limit)", "yellow")
        self.show_sources(turn, brief=True)

    def show_sources(self, turn: ChatTurn | None, *, brief: bool = False) -> None:
        if turn is None:
            self._say("No answer yet.", "yellow")
            return
        if not turn.log.retrieved:
            if not brief:
                self._say("The last answer was given no notes.", "dim")
            return
        self._say("Sources:", "dim")
        for i, ref in enumerate(turn.log.retrieved, 1):
            where = display_source(str(ref.get("source") or ""), self.garden_root)
            heading = ref.get("heading")
            self._say(f"  [{i}] {where}" + (f" > {heading}" if heading else ""), "dim")

    # -- input ----------------------------------------------------------------------------

    def run(self) -> None:
        self._say(
            f"Chatting with {self.session.run_id} · mode {self._mode_name()} · notes "
            f"{'on' if self.rag else 'off'}. /help lists commands, /quit leaves.",
            "dim",
        )
        while True:
            try:
                line = self.read("you> ")
            except KeyboardInterrupt:
                if self._confirm_leave():
                    break
                continue
            if line is None or not self.handle(line):
                break

    def _confirm_leave(self) -> bool:
        self.notices.print()
        try:
            answer = self.read("Leave the chat? [y/N] ")
        except KeyboardInterrupt:
            answer = None  # Ctrl-C twice: leave
        if answer is None:
            self.notices.print()
            return True
        return answer.strip().lower() in ("y", "yes")

    def handle(self, line: str) -> bool:
        """Act on one line of input; False when the user wants to leave."""
        line = line.strip()
        if not line:
            return True
        if line.startswith("/"):
            command, _, rest = line.partition(" ")
            try:
                return self.command(command.lower(), rest.strip())
            except BonsaiError as exc:
                self._say(f"error: {exc}", "red")
                return True
        self.ask(line)
        return True

    def ask(self, question: str, *, stream: bool = True) -> ChatTurn | None:
        """Answer ``question``, showing it as it comes; None if it failed or was interrupted."""
        if not self._engine_ready():
            return None
        view = _AnswerView(self.console, self.notices)
        with ctrl_c_stops() as stop_asked:
            try:
                turn = self.session.ask(
                    question,
                    rag=self.rag,
                    on_delta=view.delta if stream else None,
                    should_stop=stop_asked,
                )
            except KeyboardInterrupt:  # a second Ctrl-C: the session logged what was written
                view.end()
                self._say(STOPPED, "yellow")
                return None
            except BonsaiError as exc:
                view.end()
                self._say(f"error: {exc}", "red")
                return None
        self.show_turn(turn, view, streamed=stream and view.kind is not None)
        return turn

    def _engine_ready(self) -> bool:
        """Wait for an engine still loading in the background (see
        :class:`~bonsai.generate.loading.BackgroundGenerator`); False if Ctrl-C ended the wait.
        A failed load raises its error, which ends the chat."""
        engine = self.session.engine
        wait = getattr(engine, "wait", None)
        ready = getattr(engine, "ready", None)
        if wait is None or ready is None:
            return True
        try:
            if ready():
                wait()
            else:
                with self.notices.status("Loading the student…"):
                    wait()
        except KeyboardInterrupt:
            self._say("(stopped waiting: the student is still loading)", "yellow")
            return False
        return True

    def _mode_name(self) -> str:
        return "q2q" if self.session.args.mode == Q2Q else "answer"

    def command(self, command: str, rest: str) -> bool:
        if command in ("/quit", "/exit", "/q"):
            return False
        handlers: dict[str, Callable[[str], bool | None]] = {
            "/help": lambda _: self._say(HELP),
            "/good": self._good,
            "/bad": self._bad,
            "/correct": self._correct,
            "/remember": self._remember,
            "/mode": self._mode,
            "/rag": self._rag,
            "/sources": lambda _: self.show_sources(self.session.last),
        }
        handler = handlers.get(command)
        if handler is None:
            self._say(f"Unknown command {command}; /help lists them.", "yellow")
            return True
        return handler(rest) is not False

    # -- commands -------------------------------------------------------------------------
    # A command that asks for more (a reason, a text) never takes a command for it: a line
    # starting with '/' is run as the command it is, and Ctrl-C cancels what was being asked.

    def _last_turn(self, what: str) -> ChatTurn:
        if self.session.last is None:
            raise BonsaiError(f"there is no answer to {what} yet: ask a question first")
        return self.session.last

    def _good(self, reason: str) -> None:
        self._last_turn("rate")
        self.session.rate(True, reason)
        self._say("Noted as a good answer (it shows in `bonsai logs`).", "green")

    def _bad(self, reason: str) -> bool:
        self._last_turn("rate")
        then = ""
        if not reason:
            answer = self._ask_more("What was wrong? (Enter to skip) ")
            if answer is None:
                self._say("Not rated.", "yellow")
                return True
            if answer.startswith("/"):
                then = answer
            else:
                reason = answer
        self.session.rate(False, reason)
        self._say("Noted as a bad answer; `bonsai grow` will list it for review.", "green")
        return self.handle(then) if then else True

    def _correct(self, better: str) -> None:
        self._last_turn("correct")
        if not better:
            self._say(
                "Write the better answer; end with a line holding only '.' (Ctrl-C cancels).",
                "dim",
            )
            try:
                better = self._read_block()
            except KeyboardInterrupt:
                self.notices.print()
                self._say("Correction cancelled: nothing stored.", "yellow")
                return
        if not better:
            self._say("Nothing written: no correction stored.", "yellow")
            return
        self.session.correct(better)
        self._say("Correction stored: it becomes a record at the next `bonsai grow`.", "green")

    def _remember(self, text: str) -> bool:
        then = ""
        if not text:
            answer = self._ask_more("Remember what? (Enter to skip) ")
            if answer is not None and answer.startswith("/"):
                then = answer
            else:
                text = answer or ""
        if not text:
            self._say("Nothing to remember.", "yellow")
        else:
            self.session.remember(text)
            self._say("Remembered: it becomes a note at the next `bonsai grow`.", "green")
        return self.handle(then) if then else True

    def _mode(self, rest: str) -> None:
        if rest:
            self.session.with_mode(rest)
        self._say(f"Mode: {self._mode_name()}", "dim")

    def _rag(self, rest: str) -> None:
        if rest:
            if rest.lower() not in ("on", "off"):
                raise BonsaiError("use /rag on or /rag off")
            self.rag = rest.lower() == "on"
        self._say(f"Notes: {'on' if self.rag else 'off'}", "dim")

    def _ask_more(self, prompt: str) -> str | None:
        """One more line for a command: stripped, '' when skipped, None on Ctrl-C."""
        try:
            line = self.read(prompt)
        except KeyboardInterrupt:
            self.notices.print()
            return None
        return (line or "").strip()

    def _read_block(self) -> str:
        lines: list[str] = []
        while True:
            line = self.read("... ")
            if line is None or line.strip() == ".":
                break
            lines.append(line)
        return "\n".join(lines).strip()
