"""The job worker: one process that runs the garden's queued jobs, one at a time.

``python -m bonsai.web.worker GARDEN PARENT_PID`` is started by ``bonsai ui``. It claims the
oldest queued job, runs it by calling the same functions as the CLI (:mod:`bonsai.web.tasks`),
writes the log to ``jobs/<id>.log`` and the progress to the ``jobs`` table, and records how it
ended. A stop asked from a page (or the server going away) becomes a SIGINT to this process, so
every stage stops the way it does on Ctrl-C in a terminal: training saves a checkpoint and is
marked interrupted, the teacher keeps every answer it has.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path

from rich.console import Console

from bonsai.db import connect
from bonsai.errors import BonsaiError
from bonsai.garden import Garden
from bonsai.web import jobs

POLL_S = 0.3
QUIT = threading.Event()
"""Set when the server goes away: its end of our stdin closes (even when it is killed)."""


class Reporter:
    """What a task reports while it runs: progress in the database, lines in the log."""

    def __init__(self, conn, job: jobs.Job, console: Console) -> None:
        self.conn = conn
        self.job = job
        self.console = console
        self.state: dict[str, object] = {}
        self._last = 0.0

    def progress(self, *, force: bool = False, **values: object) -> None:
        self.state.update(values)
        now = time.monotonic()
        if force or now - self._last > 0.25:
            self._last = now
            jobs.set_progress(self.conn, self.job.id, **self.state)

    def log(self, message: str) -> None:
        self.console.print(message, markup=False, highlight=False, soft_wrap=True)


class _Watch(threading.Thread):
    """Turns a stop request (or the server's death) into a SIGINT for the job, once."""

    def __init__(self, db_path: Path, job_id: int) -> None:
        super().__init__(name="bonsai-job-watch", daemon=True)
        self.db_path, self.job_id = db_path, job_id
        self.done = threading.Event()

    def run(self) -> None:
        conn = connect(self.db_path, migrate_schema=False)
        try:
            while not self.done.wait(POLL_S):
                if QUIT.is_set() or jobs.stop_wanted(conn, self.job_id):
                    os.kill(os.getpid(), signal.SIGINT)
                    return
        finally:
            conn.close()


def _watch_stdin() -> None:
    try:
        while sys.stdin.buffer.read(1024):
            pass
    except (OSError, ValueError):
        pass
    QUIT.set()


def run_job(garden: Garden, job: jobs.Job) -> str:
    """Run one claimed job to its end; returns the state it ended in."""
    from bonsai.web.tasks import TASKS

    path = jobs.log_path(garden.root, job.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = garden.db
    with path.open("a", encoding="utf-8", buffering=1) as handle:
        console = Console(
            file=handle, width=160, force_terminal=False, color_system=None, highlight=False
        )
        reporter = Reporter(conn, job, console)
        watch = _Watch(garden.db_path, job.id)
        watch.start()
        state, result, error = "failed", {}, None
        try:
            result = TASKS[job.kind](garden, job.params, reporter) or {}
            state = str(result.pop("_state", "finished"))
        except KeyboardInterrupt:
            why = "the server stopped" if QUIT.is_set() else "stopped on request"
            state, error = "interrupted", why
            reporter.log(f"Interrupted: {why}.")
        except BonsaiError as exc:
            error = str(exc)
            reporter.log(f"error: {exc}")
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            traceback.print_exc(file=handle)
        finally:
            watch.done.set()
        if state == "interrupted" and error is None:
            error = "the server stopped" if QUIT.is_set() else "stopped on request"
        reporter.progress(force=True)
        jobs.finish(conn, job.id, state, result=result, error=error)
        reporter.log(f"Job {job.id} {state}.")
    return state


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    garden = Garden.open(Path(argv[0]))
    # SIGINT and SIGTERM stop the running job as Ctrl-C would; between jobs they do nothing
    # worse than end a sleep. The worker ends when the server closes our stdin.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    threading.Thread(target=_watch_stdin, name="bonsai-stdin", daemon=True).start()
    conn = garden.db
    while not QUIT.is_set():
        try:
            job = jobs.claim_next(conn, os.getpid())
            if job is None:
                QUIT.wait(POLL_S)
                continue
            run_job(garden, job)
        except KeyboardInterrupt:
            continue
    return 0


if __name__ == "__main__":
    sys.exit(main())
