"""The model behind the chat page and the API of ``bonsai ui``, loaded when first asked.

``bonsai serve`` loads its run before it listens; the pages should open at once, and the run to
answer with changes as the keeper trains, grows and promotes. :class:`LazySession` stands in for
:class:`~bonsai.chat.session.ChatSession`: it loads the default run (the promoted one, else the
newest finished one, else the base model) in the model thread on the first question, and loads
again when that default has changed. The answering itself is ``ChatSession.ask``: one code path.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from bonsai.garden import Garden


class LazySession:
    def __init__(
        self, root: Path, *, run: str | None = None, engine: str = "transformers",
        precision: str = "int8", db_wait_s: float = 10.0, log_turn: Any = None,
    ) -> None:  # fmt: skip
        self.root = Path(root)
        self.db_wait_s = db_wait_s
        self.log_turn = log_turn
        """How turns are stored (the server's writer, which waits out a locked database)."""
        self.run = run
        self.engine_name = engine
        self.precision = precision
        self._session: Any = None
        self._lock = threading.Lock()
        self.loaded_run: str | None = None
        self.on_load: Any = None
        """Called with the run id after a (re)load (the server then names it in /v1/models)."""

    @property
    def engine(self) -> Any:
        """The loaded model's engine, or None while none is loaded (nothing loads here)."""
        return self._session.engine if self._session is not None else None

    def wanted_run(self) -> str:
        from bonsai.generate.loading import choose_run

        garden = Garden.open(self.root)
        try:
            return choose_run(garden, self.run).id
        finally:
            garden.close()

    def session(self) -> Any:
        """The session for the run chat should use now (loads or reloads it)."""
        from bonsai.chat import store
        from bonsai.chat.session import ChatSession
        from bonsai.generate.loading import choose_run, load_generator
        from bonsai.serve import connect_waiting

        with self._lock:
            garden = Garden.open(self.root)
            try:
                choice = choose_run(garden, self.run)
                if self._session is None or choice.id != self.loaded_run:
                    loaded = load_generator(
                        choice, engine=self.engine_name, precision=self.precision
                    )
                    old = self._session
                    self._session = ChatSession(
                        old.conn
                        if old is not None
                        else connect_waiting(garden.db_path, self.db_wait_s),
                        loaded.engine,
                        loaded.layout,
                        run_id=choice.id,
                        base_model=choice.base_model,
                        client="web",
                        session_id="web",
                        log_turn=self.log_turn or store.log_turn,
                    )
                    self.loaded_run = choice.id
                    if self.on_load is not None:
                        self.on_load(choice.id)
            finally:
                garden.close()
            return self._session

    def warm(self) -> None:
        """Load the model, the retrieval encoder and the language detector now (the server does
        it in the model thread as it starts, so the first question does not wait for them)."""
        self.session().warm()

    def ask(self, question: str, **kwargs: Any) -> Any:
        return self.session().ask(question, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.session(), name)
