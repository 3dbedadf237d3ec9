"""The API's HTTP/1.1 connections: none waits for a request head for ever, and there are never so many
that the process runs out of file descriptors.

uvicorn times out only a keep-alive pause after a response, and any byte received cancels that: a
connection that sends nothing, or a header line now and then, was held for ever (slowloris). Held by
the ten thousand, they took every descriptor, and the health probes' own connections failed: healthy
services went Unhealthy and their DNS answers were withdrawn.

So, as nginx's client_header_timeout and Go's ReadHeaderTimeout do, a request's line and headers must
arrive within `header_seconds`, counted from the connection, or after a keep-alive pause from the next
request's first byte (the pause itself stays uvicorn's `timeout_keep_alive`). Then the connection is
closed, with a 408 `Status` if part of a head came. A body is BodyLimitMiddleware's (app/api/limits.py).

And at most `max_connections` are open, below the open-files limit: a new one beyond it closes a
connection with no request in progress (an idle keep-alive one, or one that has yet to send a whole
head) of the client address holding the most connections, the one that has waited longest. So one
host holding connections by the thousand closes its own, and cannot lock out another client that sends
its request at once; when no connection is waiting for a head, the new one is closed instead.

uvicorn uses httptools when it is installed, else h11; pygslb names h11's protocol itself, so these
guards apply whichever is installed.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, ClassVar

import h11
import orjson
from uvicorn.protocols.http.h11_impl import H11Protocol

from app.domain.status import failure

log = logging.getLogger("pygslb.api")

REFUSED_LOG_SECONDS = 60.0


def _timeout_response(seconds: float) -> bytes:
    status = failure(408, "Timeout", f"the request line and headers did not arrive within {seconds:g} s")
    body = orjson.dumps(status.wire())
    head = (
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


@dataclass
class _Books:
    """One server's connections by client address: how many are open, which wait for a request head."""

    open: Counter[str] = field(default_factory=Counter)
    waiting: dict[str, dict[GuardedH11Protocol, None]] = field(default_factory=dict)
    refused: int = 0
    refused_logged: float = float("-inf")

    def victim(self) -> GuardedH11Protocol | None:
        """The longest-waiting connection of the address with the most open connections."""
        if not self.waiting:
            return None
        heaviest = max(self.waiting, key=self.open.__getitem__)
        return next(iter(self.waiting[heaviest]))


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a request-head timeout and a cap on open connections."""

    header_seconds: ClassVar[float]
    max_connections: ClassVar[int]
    books: ClassVar[_Books]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.head_timer: asyncio.TimerHandle | None = None
        self.address = ""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.address = self.client[0] if self.client else ""
        self.books.open[self.address] += 1
        if len(self.connections) > self.max_connections:
            victim = self.books.victim()
            if victim is None:
                self._log_refusal()
                transport.close()
                return
            victim._head_arrived()
            victim.transport.close()
        self._wait_for_head()
        self.head_timer = self.loop.call_later(self.header_seconds, self._head_timed_out)

    def data_received(self, data: bytes) -> None:
        if self.head_timer is None and self.conn.their_state is h11.IDLE:  # the next request begins
            self.head_timer = self.loop.call_later(self.header_seconds, self._head_timed_out)
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # a whole head came (or a bad one: already answered)
            self._head_arrived()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # may take the next, pipelined, request at once
        if self.transport.is_closing():
            return
        if self.conn.their_state is h11.SEND_BODY:
            # Answered before the body came, and no one reads on: a body trickled a byte at a time
            # would hold the connection for ever (each byte resets uvicorn's keep-alive timer), out of
            # reach of the cap. Closed, as Go's server closes a connection with a body left unread.
            self.transport.close()
            return
        if self.conn.their_state is not h11.IDLE:
            return
        self._wait_for_head()
        if self.conn.trailing_data[0] and self.head_timer is None:  # part of a pipelined head is here
            self.head_timer = self.loop.call_later(self.header_seconds, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_arrived()
        if self.transport is not None:  # connection_made ran
            self.books.open[self.address] -= 1
            if self.books.open[self.address] <= 0:
                del self.books.open[self.address]
        super().connection_lost(exc)

    def _wait_for_head(self) -> None:
        waiting = self.books.waiting.setdefault(self.address, {})
        waiting.pop(self, None)
        waiting[self] = None

    def _head_arrived(self) -> None:
        waiting = self.books.waiting.get(self.address)
        if waiting is not None and self in waiting:
            del waiting[self]
            if not waiting:
                del self.books.waiting[self.address]
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _head_timed_out(self) -> None:
        self.head_timer = None
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
            return
        if self.conn.trailing_data[0]:  # part of a head came: say why the connection ends
            self.transport.write(_timeout_response(self.header_seconds))
        self.transport.close()

    def _log_refusal(self) -> None:
        books = self.books
        books.refused += 1
        now = self.loop.time()
        if now - books.refused_logged >= REFUSED_LOG_SECONDS:
            books.refused_logged = now
            log.warning(
                "API connection refused: %d open, each with a request in progress "
                "(GSLB_API_MAX_CONNECTIONS); %d refused so far",
                len(self.connections) - 1,
                books.refused,
            )


def guarded_protocol(header_seconds: float, max_connections: int) -> type[GuardedH11Protocol]:
    """The protocol class for one uvicorn server (`uvicorn.Config(http=...)`), with its own books."""

    class ApiHttpProtocol(GuardedH11Protocol):
        pass

    ApiHttpProtocol.header_seconds = header_seconds
    ApiHttpProtocol.max_connections = max_connections
    ApiHttpProtocol.books = _Books()
    return ApiHttpProtocol
