"""Request body limits as a pure ASGI middleware (style.md §A5): 413 before the app sees too much, 408
when the body takes too long.

Content-Length is only a hint: a chunked or lying client is cut off by counting the bytes actually
received, so no handler ever buffers more than the limit. Before the 413 the rest of the body is read
and dropped (up to a bound): closing a connection with unread data resets it, and a client still sending
would see the reset instead of the answer. A body must arrive whole within `BODY_SECONDS` of the request:
a client trickling it a byte at a time would otherwise hold a connection and a handler for ever.

A request framed twice, with Transfer-Encoding and Content-Length, is refused with 400 and its
connection closed (RFC 9112 §6.1): a proxy in front may have framed it by the other header, and what
it took for this request's body would be read here as the next request (request smuggling).
"""

from __future__ import annotations

import asyncio
import contextlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import status_response
from app.domain.status import failure

_DRAIN_BYTES = 1_048_576
_DRAIN_SECONDS = 1.0
BODY_SECONDS = 30.0  # for at most GSLB_MAX_BODY_BYTES (1 MiB): generous for any client that is sending


async def _drain(receive: Receive) -> None:
    """Read and drop what is left of the request body: at most _DRAIN_BYTES, for _DRAIN_SECONDS."""
    drained = 0
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(_DRAIN_SECONDS):
            while drained < _DRAIN_BYTES:
                message = await receive()
                if message["type"] != "http.request" or not message.get("more_body", False):
                    return
                drained += len(message.get("body", b""))


class _TooLarge(Exception):
    pass


class _TooSlow(Exception):
    pass


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int, body_seconds: float | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.body_seconds = BODY_SECONDS if body_seconds is None else body_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._framed_twice(scope):
            message = "a request may not have both Transfer-Encoding and Content-Length (RFC 9112 §6.1)"
            await _drain(receive)  # the body as framed here, so a client still sending sees the answer
            await status_response(failure(400, "BadRequest", message), {"Connection": "close"})(
                scope, receive, send
            )
            return
        if self._declared(scope) > self.max_bytes:
            if not self._expects_continue(
                scope
            ):  # else the client waits for "100 Continue": nothing to drain
                await _drain(receive)
            await self._reject(scope, receive, send)
            return

        received = 0
        body_complete = False
        response_started = False
        deadline = asyncio.get_running_loop().time() + self.body_seconds

        async def counting_receive() -> Message:
            nonlocal received, body_complete
            if body_complete:  # after the body: the disconnect a handler may wait for, unbounded
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise _TooSlow from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_complete = not message.get("more_body", False)
                if received > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if response_started:  # too late to answer 413; the connection is dropped
                raise
            if not body_complete:
                await _drain(receive)
            await self._reject(scope, receive, send)
        except _TooSlow:
            if response_started:
                raise
            message = f"the request body did not arrive within {self.body_seconds:g} s"
            await status_response(failure(408, "Timeout", message), {"Connection": "close"})(
                scope, receive, send
            )

    @staticmethod
    def _expects_continue(scope: Scope) -> bool:
        return any(
            name == b"expect" and value.lower() == b"100-continue" for name, value in scope.get("headers", ())
        )

    @staticmethod
    def _framed_twice(scope: Scope) -> bool:
        names = {name for name, _ in scope.get("headers", ())}
        return b"transfer-encoding" in names and b"content-length" in names

    @staticmethod
    def _declared(scope: Scope) -> int:
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    return int(value)
                except ValueError:
                    return 0
        return 0

    async def _reject(self, scope: Scope, receive: Receive, send: Send) -> None:
        status = failure(
            413,
            "RequestEntityTooLarge",
            f"the request body is larger than the limit of {self.max_bytes} bytes (GSLB_MAX_BODY_BYTES)",
        )
        # Close the connection: the rest of the body is not read.
        await status_response(status, {"Connection": "close"})(scope, receive, send)
