"""Request body size limit as a pure ASGI middleware (style.md §A5): 413 before the app sees too much.

Content-Length is only a hint: a chunked or lying client is cut off by counting the bytes actually
received, so no handler ever buffers more than the limit.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import status_response
from app.domain.status import failure


class _TooLarge(Exception):
    pass


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._declared(scope) > self.max_bytes:
            await self._reject(scope, receive, send)
            return

        received = 0
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
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
            await self._reject(scope, receive, send)

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
