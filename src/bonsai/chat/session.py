"""A chat session: a question in, an answer out (streamed), the turn logged, feedback taken.

The terminal chat and the HTTP server both go through :meth:`ChatSession.ask`, so a turn is
built, retrieved for, generated and logged the same way everywhere, and exactly once: whether it
finishes, is cancelled by the client, or fails.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from bonsai.chat import store
from bonsai.chat.prompts import (
    ANSWER,
    Q2Q,
    PromptParts,
    build_record,
    guess_category,
    guess_language,
    history_block,
    normalise_mode,
    notes_block,
    notes_that_fit,
    split_given_text,
)
from bonsai.db.connection import transaction
from bonsai.errors import BonsaiError
from bonsai.generate.args import GenerateArgs
from bonsai.generate.engine import Generation, Generator
from bonsai.generate.prompting import PromptLayout
from bonsai.layouts import ANSWER_MARKER
from bonsai.rag.statements import FOCUS_STATEMENTS

if TYPE_CHECKING:
    import sqlite3

    from bonsai.rag import Hit

READING_CATEGORIES = ("open_qa", "closed_qa")
"""The questions answered by reading the notes or a given text: their notes are focused on the
question (ChatArgs.focus) and their answers weighed by context-aware decoding
(GenerateArgs.context_weight). Not a translation, whose source is its own text (weighed towards
the notes, it drifts into their words: measured in docs/chat.md), nor a label, a list of ideas or
questions back."""

Retriever = Callable[[str, int], "list[Hit]"]
"""(query, k) → the k best chunks of the knowledge base."""
Focus = Callable[[str, "list[Hit]", int], "list[Hit]"]
"""(question, retrieved hits, statements to keep) → the hits as the prompt shows them."""
OnDelta = Callable[[str, str], None]
"""Called with ('reasoning' | 'answer', text) as the model writes."""


@dataclass
class ChatArgs:
    """How the chat answers."""

    mode: str = ANSWER
    """'answer', or 'question_to_question' (q2q): reply with 2–4 sharper questions."""
    rag: bool = True
    """Retrieve from the garden's notes and records and put the best chunks in the prompt."""
    k: int = 3
    """How many chunks to retrieve."""
    max_notes_chars: int = 1500
    """The retrieved notes are cut to this many characters: a small model reads a short context
    better, and the prompt stays fast to process."""
    max_history_chars: int = 1500
    """Earlier turns a client sends are cut to this many characters, newest kept."""
    focus: int = FOCUS_STATEMENTS
    """For a question read from the notes (``READING_CATEGORIES``), each note section shows only
    its this many statements closest to the question (:mod:`bonsai.rag.focus`); 0 shows it whole."""
    generate: GenerateArgs = field(default_factory=GenerateArgs)

    def __post_init__(self) -> None:
        self.mode = normalise_mode(self.mode)
        if not 1 <= self.k <= 20:
            raise BonsaiError(f"k must be between 1 and 20, not {self.k}", field="k")
        if not 0 <= self.focus <= 50:
            raise BonsaiError(f"focus must be between 0 and 50, not {self.focus}", field="focus")
        if self.max_notes_chars < 0 or self.max_history_chars < 0:
            raise BonsaiError("character limits cannot be negative", field="max_notes_chars")


@dataclass
class ChatTurn:
    """A finished exchange, as logged."""

    log: store.TurnLog
    hits: list[Hit]
    generation: Generation

    @property
    def id(self) -> str:
        return self.log.id

    @property
    def answer(self) -> str:
        return self.log.answer

    @property
    def reasoning(self) -> str | None:
        return self.log.reasoning


class CompletionSplitter:
    """Routes streamed text to 'reasoning' or 'answer'. In a layout where the model writes its
    reasoning first, text before :data:`ANSWER_MARKER` is reasoning (a marker split across
    deltas is held back until it is whole); otherwise all of it is the answer."""

    def __init__(self, reasoning_first: bool, emit: OnDelta | None) -> None:
        self.in_answer = not reasoning_first
        self.emit = emit
        self.pending = ""
        self.answer_started = False

    def feed(self, text: str) -> None:
        if self.emit is None:
            return
        if self.in_answer:
            self._answer(text)
            return
        self.pending += text
        at = self.pending.find(ANSWER_MARKER)
        if at != -1:
            before, after = self.pending[:at], self.pending[at + len(ANSWER_MARKER) :]
            if before.strip():
                self.emit("reasoning", before.rstrip())
            self.pending, self.in_answer = "", True
            self._answer(after)
            return
        keep = next(
            (
                n
                for n in range(len(ANSWER_MARKER) - 1, 0, -1)
                if self.pending.endswith(ANSWER_MARKER[:n])
            ),
            0,
        )
        ready = self.pending[: len(self.pending) - keep]
        if ready:
            self.emit("reasoning", ready)
        self.pending = self.pending[len(ready) :]

    def _answer(self, text: str) -> None:
        if not self.answer_started:
            text = text.lstrip()  # the newline after the marker
            if not text:
                return
            self.answer_started = True
        if self.emit is not None:
            self.emit("answer", text)


WARM_TEXT = "Quel âge a Mochi aujourd'hui ?"
"""French: neither the script nor the English word list decides its language (see
:meth:`ChatSession.warm`)."""

NOTES_FIRST_POOL = 50
"""How many ranked chunks :func:`notes_first` chooses from, at least. A keeper's records are
short and phrased like questions, so in a garden with a few hundred of them the best notes,
above all notes in another language than the question, may rank below the twelfth place; on
the sample garden (bench/retrieval.py, "notes in the prompt") a section that answers the
question reached the prompt for 18 of 32 questions chosen from 12 chunks and 20 of 32 from 50."""


def notes_first_pool(k: int) -> int:
    """How many chunks are retrieved to choose ``k`` from (see :func:`notes_first`)."""
    return max(4 * k, NOTES_FIRST_POOL)


def notes_first(pool: Sequence[Hit], k: int) -> list[Hit]:
    """``k`` of the ranked ``pool``: the best notes, and at most one record while notes fill the
    other places (more records only when there are too few notes), in the pool's order.

    A record is a question the student was trained on, and it is short and close in wording to
    the keeper's questions, so records otherwise crowd the notes out of the few passages a prompt
    has room for. One place is kept for the best record, which may hold what no note does."""
    notes = [hit for hit in pool if hit.kind == "file"]
    records = [hit for hit in pool if hit.kind != "file"]
    chosen = notes[: max(1, k - 1)] + records[: max(0, k - len(notes[: max(1, k - 1)]))]
    if len(chosen) < k:
        chosen += [hit for hit in pool if hit not in chosen][: k - len(chosen)]
    rank = {id(hit): n for n, hit in enumerate(pool)}
    return sorted(chosen[:k], key=lambda hit: rank[id(hit)])


def garden_retriever(conn: sqlite3.Connection) -> Retriever:
    """Retrieval over the garden's knowledge base, notes first (:func:`notes_first`); nothing
    (and no encoder loaded) while it is empty."""

    def retrieve(query: str, k: int) -> list[Hit]:
        if conn.execute("SELECT 1 FROM knowledge_chunks LIMIT 1").fetchone() is None:
            return []
        from bonsai.rag import retrieve as rag_retrieve

        return notes_first(rag_retrieve(conn, query, notes_first_pool(k)), k)

    return retrieve


def garden_focus(conn: sqlite3.Connection) -> Focus:
    """:func:`bonsai.rag.focus.focus_hits` over the garden's statements."""

    def focus(question: str, hits: list[Hit], keep: int) -> list[Hit]:
        from bonsai.rag.focus import focus_hits

        return focus_hits(conn, question, hits, keep)

    return focus


def hit_ref(hit: Hit) -> dict[str, Any]:
    """What a turn log keeps of a retrieved chunk: enough to find and cite it again."""
    from bonsai.rag import format_citation

    return {
        "chunk_id": hit.chunk_id,
        "source": hit.source,
        "heading": hit.heading,
        "score": round(float(hit.score), 6),
        "citation": format_citation(hit),
    }


class ChatSession:
    """Answers questions with one engine in one prompt layout and logs every turn."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        engine: Generator,
        layout: PromptLayout,
        *,
        run_id: str,
        base_model: str = "",
        args: ChatArgs | None = None,
        retriever: Retriever | None = None,
        focus: Focus | None = None,
        session_id: str | None = None,
        client: str = "chat",
        detect_language: Callable[[str], str | None] = guess_language,
        log_turn: Callable[[sqlite3.Connection, store.TurnLog], None] = store.log_turn,
    ) -> None:
        """``log_turn`` stores a finished turn (the server's waits out a busy database without
        losing the turn); ``focus`` cuts retrieved note sections to the lines closest to the
        question (default: :func:`bonsai.rag.focus.focus_hits` over the garden)."""
        self.conn = conn
        self.log_turn = log_turn
        self.engine = engine
        self.layout = layout
        self.run_id = run_id
        self.base_model = base_model
        self.args = args or ChatArgs()
        self.retriever = retriever if retriever is not None else garden_retriever(conn)
        self.focus = focus if focus is not None else garden_focus(conn)
        self.session_id = session_id or store.new_session_id()
        self.client = client
        self.detect_language = detect_language
        self._shows_category = layout.shows_category()
        self._reasoning_first = layout.reasoning_first
        self.last: ChatTurn | None = None

    def warm(self) -> None:
        """Load now what a first question would otherwise wait for, in the calling thread: the
        engine, the retrieval encoder (when there are notes to search) and the language
        detector. ``bonsai serve`` and ``bonsai ui`` call it in their model thread as they
        start; measured on a fresh ``bonsai serve``, a first question in French or a translation
        of an English sentence waited 1.7 to 2 s longer without it (the detector's models)."""
        self.engine.count_tokens("warm up")  # a background engine: waits for its load
        if self.args.rag:
            warm_up(self.conn, rag=True)()
        # A text neither the script nor the English word list decides: the statistical
        # detector loads its Latin-script models for it.
        self.detect_language(WARM_TEXT)

    # -- asking ---------------------------------------------------------------------------

    def ask(
        self,
        question: str,
        *,
        mode: str | None = None,
        rag: bool | None = None,
        history: Sequence[tuple[str, str]] = (),
        system: str = "",
        generate_args: GenerateArgs | None = None,
        on_delta: OnDelta | None = None,
        should_stop: Callable[[], bool] | None = None,
        messages: list[dict[str, Any]] | None = None,
        client: str | None = None,
        turn_id: str | None = None,
        session: str | None = None,
    ) -> ChatTurn:
        """Answer ``question``; the turn is logged whatever happens (ok, cancelled, error)."""
        if not question.strip():
            raise BonsaiError("the question is empty", field="question")
        started = time.time()
        args = self.args
        mode = normalise_mode(mode) if mode else args.mode
        use_rag = args.rag if rag is None else rag
        gen_args = (generate_args or args.generate).with_stop(self.layout.stop)

        request, given = (question.strip(), "") if mode == Q2Q else split_given_text(question)
        language = self.detect_language(request) or self.detect_language(question)
        parts = PromptParts(
            given=given,
            system=system.strip(),
            history=history_block(history, args.max_history_chars),
        )
        category = guess_category(request, parts.input_text(), mode)
        hits = self.retriever(question, args.k) if use_rag else []
        if hits and category in READING_CATEGORIES and args.focus:
            hits = self.focus(question, hits, args.focus)
        hits = notes_that_fit(hits, args.max_notes_chars)
        while True:
            parts = replace(parts, notes=notes_block(hits, args.max_notes_chars))
            prompt = self._render(request, parts, mode=mode, language=language, category=category)
            # Leave the answer room: drop the weakest notes until the prompt fits.
            if not hits or self._fits(prompt, gen_args.max_new_tokens):
                break
            hits = hits[:-1]
        log = store.TurnLog(
            id=turn_id or store.new_turn_id(),
            session=session or self.session_id,
            mode=mode,
            run_id=self.run_id,
            prompt=question,
            rendered_prompt=prompt,
            answer="",
            created_at=started,
            base_model=self.base_model,
            layout=self.layout.name,
            category=category,
            language=language,
            messages=messages or [],
            retrieved=[hit_ref(h) for h in hits],
            settings={"rag": use_rag, "k": args.k, "generate": gen_args.to_dict()},
            client=client or self.client,
        )
        splitter = CompletionSplitter(self._reasoning_first, on_delta)
        written: list[str] = []
        generation: Generation | None = None
        prior = None
        context = parts.notes or parts.given
        if gen_args.context_weight > 0 and context and category in READING_CATEGORIES:
            # The same question without its notes and given text: what the model would say
            # anyway, for context-aware decoding (GenerateArgs.context_weight).
            bare = replace(parts, given="", notes="")
            prior = self._render(request, bare, mode=mode, language=language, category=category)
        try:
            stream = self.engine.stream(prompt, gen_args, prior=prior)
            with stream:
                for delta in stream:
                    written.append(delta)
                    splitter.feed(delta)
                    if should_stop and should_stop():
                        break
            generation = stream.result
        except KeyboardInterrupt:
            # Stopped by the user mid-answer: what was written is kept, marked as cancelled.
            self._log_stopped(log, "".join(written), started)
            raise
        except BaseException as exc:
            log.status, log.error = "error", f"{type(exc).__name__}: {exc}"
            log.latency_s = round(time.time() - started, 4)
            self.log_turn(self.conn, log)
            raise
        reasoning, answer = self.layout.parse(generation.text)
        log.answer, log.reasoning = answer, reasoning
        log.finish_reason = generation.finish_reason
        log.status = "cancelled" if generation.finish_reason == "cancelled" else "ok"
        log.latency_s = round(time.time() - started, 4)
        log.prompt_tokens = generation.prompt_tokens
        log.completion_tokens = generation.completion_tokens
        self.log_turn(self.conn, log)
        turn = ChatTurn(log=log, hits=list(hits), generation=generation)
        self.last = turn
        return turn

    def _log_stopped(self, log: store.TurnLog, written: str, started: float) -> None:
        log.reasoning, log.answer = self.layout.parse(written)
        log.status = log.finish_reason = "cancelled"
        log.latency_s = round(time.time() - started, 4)
        store.log_turn(self.conn, log)

    def _render(
        self, request: str, parts: PromptParts, *, mode: str, language: str | None, category: str
    ) -> str:
        """The prompt, in this session's layout, for ``request`` with ``parts``."""
        record = build_record(
            request,
            mode=mode,
            parts=parts,
            language=language,
            category=category,
            layout_shows_category=self._shows_category,
        )
        return self.layout.render(record, parts.notes)

    def _fits(self, prompt: str, answer_tokens: int) -> bool:
        room = min(answer_tokens, self.engine.max_context // 4)
        return self.engine.count_tokens(prompt) + 1 + room <= self.engine.max_context

    def with_mode(self, mode: str) -> None:
        self.args = replace(self.args, mode=normalise_mode(mode))

    # -- feedback ---------------------------------------------------------------------------

    def _turn_id(self, turn_id: str | None) -> str:
        if turn_id:
            return turn_id
        if self.last is None:
            raise BonsaiError("there is no answer to give feedback on yet", field="turn_id")
        return self.last.id

    def rate(self, good: bool, reason: str = "", *, turn_id: str | None = None) -> store.Feedback:
        """Rate a turn (the last by default). A later rating replaces an earlier one that the
        grow stage has not used yet: the user changed their mind, and one turn is not both."""
        about = self._turn_id(turn_id)
        with transaction(self.conn):
            store.withdraw_ratings(self.conn, about)
            return store.add_feedback(
                self.conn,
                "good" if good else "bad",
                turn_id=about,
                reason=reason,
                client=self.client,
            )

    def correct(self, better_answer: str, *, turn_id: str | None = None) -> store.Feedback:
        return store.add_feedback(
            self.conn,
            "correction",
            turn_id=self._turn_id(turn_id),
            text=better_answer,
            client=self.client,
        )

    def remember(self, experience: str, *, turn_id: str | None = None) -> store.Feedback:
        """Keep an experience; it is about the last turn when there is one."""
        about = turn_id or (self.last.id if self.last else None)
        return store.add_feedback(
            self.conn, "experience", turn_id=about, text=experience, client=self.client
        )


def warm_up(conn: sqlite3.Connection, *, rag: bool) -> Callable[[], None]:
    """The loading a first question would otherwise wait for, to run in another thread while the
    user types: the retrieval encoder, when there are notes to search. The database is read
    here, in the caller's thread.

    The language detector is not warmed: lingua holds the GIL for the whole of its load
    (seconds), which would freeze the prompt for a question the script rules decide at once."""
    has_notes = rag and conn.execute("SELECT 1 FROM knowledge_chunks LIMIT 1").fetchone()

    def load() -> None:
        if has_notes:
            from bonsai.rag.embed import load_encoder

            load_encoder().encode_query("warm up")  # the weights load on first use

    return load


def open_session(
    garden: Any,
    run: str | None = None,
    *,
    args: ChatArgs | None = None,
    client: str = "chat",
    conn: sqlite3.Connection | None = None,
    engine: str = "auto",
    precision: str = "int8",
) -> ChatSession:
    """Load the run called ``run`` (None: the default, see :mod:`bonsai.generate.loading`) and
    start a session on the garden's database (or on ``conn``)."""
    from bonsai.generate.loading import choose_run, load_generator

    choice = choose_run(garden, run)
    loaded = load_generator(choice, engine=engine, precision=precision)
    return ChatSession(
        conn if conn is not None else garden.db,
        loaded.engine,
        loaded.layout,
        run_id=choice.id,
        base_model=choice.base_model,
        args=args,
        client=client,
    )
