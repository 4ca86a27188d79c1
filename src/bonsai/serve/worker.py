"""The model runs in one worker thread fed by a bounded queue.

On a 2-core CPU, two generations at once are each slower than one after the other, and a model
is not safe to share between threads anyway. So every job that uses the model (chat, embeddings)
goes through one thread, in order; the queue has a fixed size, and a job that does not fit is
refused at once (the server answers 429) instead of piling up until every client times out.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")


class Busy(Exception):
    """The queue is full: try again later."""


class ModelWorker:
    def __init__(self, queue_size: int) -> None:
        self._queue: queue.Queue[tuple[Callable[[], Any], Future[Any]] | None] = queue.Queue(
            maxsize=queue_size
        )
        self.queue_size = queue_size
        self._thread = threading.Thread(target=self._loop, name="bonsai-model", daemon=True)
        self._stopping = threading.Event()
        self.busy = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def submit(self, job: Callable[[], T]) -> Future[T]:
        """Queue ``job``; raises :class:`Busy` when the queue is full or the worker stopping."""
        if self._stopping.is_set():
            raise Busy("the server is shutting down")
        future: Future[T] = Future()
        try:
            self._queue.put_nowait((job, future))
        except queue.Full:
            raise Busy(f"{self.queue_size} requests are already waiting") from None
        return future

    @property
    def waiting(self) -> int:
        return self._queue.qsize()

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            job, future = item
            # A job whose client gave up while it waited is skipped: it never ran, so it is
            # neither answered nor logged.
            if not future.set_running_or_notify_cancel():
                continue
            self.busy.set()
            try:
                future.set_result(job())
            except BaseException as exc:  # handed to the waiting request, which reports it
                future.set_exception(exc)
            finally:
                self.busy.clear()

    def stop(self, timeout: float = 5.0) -> None:
        """Refuse new jobs, cancel the waiting ones, let the running one finish."""
        self._stopping.set()
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[1].cancel()
        self._queue.put(None)
        self._thread.join(timeout)
