"""Connections that send nothing do not stay open.

uvicorn closes a kept-alive connection that stays idle after a response, but not one that never
sends a request, nor one that trickles a request head a byte at a time: each would hold a socket
(and, in numbers, the server) for ever. Here the keep-alive timeout also bounds the wait for a
whole request head, from the connection's first moment and after every response.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol


class IdleTimeoutH11(H11Protocol):
    _head_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._waiting_for_head():
            self._await_head()  # a deadline already running is kept: trickling does not reset it
        else:
            self._cancel_head_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._cancel_head_deadline()  # uvicorn's own keep-alive timer takes over

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_deadline()
        super().connection_lost(exc)

    def _waiting_for_head(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _await_head(self) -> None:
        if self._head_deadline is None:
            self._head_deadline = self.loop.call_later(self.timeout_keep_alive, self._give_up)

    def _cancel_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _give_up(self, *_: Any) -> None:
        self._head_deadline = None
        if self._waiting_for_head() and not self.transport.is_closing():
            self.transport.close()
