"""The terminal chat loop: ask, watch the answer stream in, then rate, correct or remember.

Input comes from a ``read(prompt) -> str | None`` function (None at end of input), so the loop
runs the same against a keyboard and against a list of lines in a test.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console
from rich.markup import escape

from bonsai.chat.prompts import Q2Q
from bonsai.chat.session import ChatSession, ChatTurn
from bonsai.errors import BonsaiError

Read = Callable[[str], "str | None"]

HELP = """Commands (about the last answer):
  /good [reason]     it was a good answer
  /bad REASON        it was a bad answer, and why
  /correct           write the better answer (several lines; end with a line holding only '.')
  /remember TEXT     keep an experience for the next round of training
  /mode [answer|q2q] show or switch the mode (q2q answers with sharper questions)
  /rag [on|off]      show or switch retrieval over your notes
  /sources           show the notes the last answer was given
  /help              this list
  /quit              leave (Ctrl-D too)"""


class Repl:
    def __init__(self, session: ChatSession, console: Console, read: Read) -> None:
        self.session = session
        self.console = console
        self.read = read
        self.rag = session.args.rag

    # -- output ---------------------------------------------------------------------------

    def _say(self, text: str, style: str = "") -> None:
        self.console.print(escape(text), style=style or None, highlight=False, soft_wrap=True)

    def show_turn(self, turn: ChatTurn, streamed: bool) -> None:
        if not streamed:
            if turn.reasoning:
                self._say(turn.reasoning, "dim")
            self._say(turn.answer)
        else:
            self.console.print()
        if turn.generation.finish_reason == "loop":
            self._say("(stopped: the answer started repeating itself)", "yellow")
        elif turn.generation.finish_reason == "length":
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
            self._say(f"  [{i}] {ref['citation']}", "dim")

    # -- input ----------------------------------------------------------------------------

    def run(self) -> None:
        self._say(
            f"Chatting with {self.session.run_id} · mode {self._mode_name()} · notes "
            f"{'on' if self.rag else 'off'}. /help lists commands, /quit leaves.",
            "dim",
        )
        while True:
            line = self.read("you> ")
            if line is None:
                break
            if not self.handle(line):
                break

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
        state = {"kind": None}

        def on_delta(kind: str, text: str) -> None:
            if kind != state["kind"]:
                if state["kind"] is not None:
                    self.console.print()
                state["kind"] = kind
            style = "dim" if kind == "reasoning" else None
            self.console.print(escape(text), end="", style=style, highlight=False, soft_wrap=True)

        try:
            turn = self.session.ask(question, rag=self.rag, on_delta=on_delta if stream else None)
        except BonsaiError as exc:
            self._say(f"error: {exc}", "red")
            return None
        self.show_turn(turn, streamed=stream and state["kind"] is not None)
        return turn

    def _mode_name(self) -> str:
        return "q2q" if self.session.args.mode == Q2Q else "answer"

    def command(self, command: str, rest: str) -> bool:
        session = self.session
        if command in ("/quit", "/exit", "/q"):
            return False
        if command == "/help":
            self._say(HELP)
        elif command == "/good":
            session.rate(True, rest)
            self._say("Thanks: noted as a good answer.", "green")
        elif command == "/bad":
            reason = rest or (self.read("what was wrong? ") or "").strip()
            session.rate(False, reason)
            self._say("Noted as a bad answer; `bonsai grow` will list it for review.", "green")
        elif command == "/correct":
            better = rest or self._read_block()
            if not better:
                self._say("Nothing written: no correction stored.", "yellow")
            else:
                session.correct(better)
                self._say(
                    "Correction stored: it becomes a record at the next `bonsai grow`.", "green"
                )
        elif command == "/remember":
            text = rest or (self.read("remember what? ") or "").strip()
            if not text:
                self._say("Nothing to remember.", "yellow")
            else:
                session.remember(text)
                self._say("Remembered: it becomes a note at the next `bonsai grow`.", "green")
        elif command == "/mode":
            if rest:
                session.with_mode(rest)
            self._say(f"Mode: {self._mode_name()}", "dim")
        elif command == "/rag":
            if rest:
                if rest.lower() not in ("on", "off"):
                    raise BonsaiError("use /rag on or /rag off")
                self.rag = rest.lower() == "on"
            self._say(f"Notes: {'on' if self.rag else 'off'}", "dim")
        elif command == "/sources":
            self.show_sources(session.last)
        else:
            self._say(f"Unknown command {command}; /help lists them.", "yellow")
        return True

    def _read_block(self) -> str:
        self._say("Write the better answer; end with a line holding only '.' (or Ctrl-D).", "dim")
        lines: list[str] = []
        while True:
            line = self.read("... ")
            if line is None or line.strip() == ".":
                break
            lines.append(line)
        return "\n".join(lines).strip()
