"""Keeps the one job worker process running while the server runs.

On start, jobs left running by a server that was killed are marked interrupted (their worker is
gone). The worker is restarted if it dies; on shutdown its stdin is closed, which stops a running
job as Ctrl-C would (training checkpoints first), and the worker ends.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from bonsai.db import connect
from bonsai.web import jobs

QUICK_DEATH_S = 5.0
RESTART_PAUSE_S = 10.0
GRACE_S = 20.0
"""How long a stopping job may take to save its checkpoint at shutdown."""


class JobSupervisor:
    def __init__(self, garden_root: Path) -> None:
        self.root = Path(garden_root)
        self.process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._spawned = 0.0

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def start(self) -> list[int]:
        """Mark orphaned jobs interrupted, start the worker; returns the orphans' ids."""
        conn = connect(self.root / "garden.db")
        try:
            orphans = jobs.mark_orphans(conn)
        finally:
            conn.close()
        self._spawn()
        self._thread = threading.Thread(target=self._watch, name="bonsai-jobs", daemon=True)
        self._thread.start()
        return orphans

    def _spawn(self) -> None:
        log = self.root / "jobs" / "worker.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        self._spawned = time.monotonic()
        with self._lock, log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bonsai.web.worker", str(self.root)],
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.root,
            )

    def _watch(self) -> None:
        while not self._stopping.is_set():
            process = self.process
            if process is not None and process.poll() is not None and not self._stopping.is_set():
                # The worker died (out of memory, a crash in native code): its job cannot be
                # running any more. Say so, and start a fresh worker for the next one.
                conn = connect(self.root / "garden.db")
                try:
                    jobs.mark_orphans(conn)
                finally:
                    conn.close()
                # A worker that cannot even start is not restarted in a tight loop.
                if time.monotonic() - self._spawned < QUICK_DEATH_S:
                    self._stopping.wait(RESTART_PAUSE_S)
                    if self._stopping.is_set():
                        return
                self._spawn()
            self._stopping.wait(1.0)

    def stop(self, timeout: float = GRACE_S) -> None:
        self._stopping.set()
        process = self.process
        if process is None:
            return
        try:
            if process.stdin:
                process.stdin.close()
        except OSError:
            pass
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
        conn = connect(self.root / "garden.db")
        try:
            jobs.mark_orphans(conn)
        finally:
            conn.close()
