"""Real backends for probe tests: an HTTP server and a TCP listener on 127.0.0.1, plus a stepper.

The stepper stands in for asyncio.sleep in ProbeManager, so a test releases probe rounds one at a
time and never waits on a clock.
"""

from __future__ import annotations

import asyncio
from collections import Counter


class HttpBackend:
    """A minimal HTTP/1.1 server whose answer can be switched, or which can stop answering at all."""

    def __init__(self) -> None:
        self.status = 200
        self.location: str | None = None
        self.hang = False
        self.paths: list[str] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._released = asyncio.Event()

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._released.clear()
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self._released.set()  # hung requests end, so that wait_closed() can return
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.paths.append(head.split(b" ", 2)[1].decode())
            if self.hang:
                await self._released.wait()
                return
            extra = f"Location: {self.location}\r\n" if self.location else ""
            head = f"HTTP/1.1 {self.status} X\r\nContent-Length: 2\r\n{extra}Connection: close\r\n\r\n"
            writer.write(head.encode() + b"ok")
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


class TcpListener:
    """Accepts and drops connections; closing it makes connects fail with 'connection refused'."""

    def __init__(self) -> None:
        self.port = 0
        self._server: asyncio.Server | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def open(self) -> None:
        self._server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None


class Stepper:
    """Replaces asyncio.sleep: each probe task parks here after a probe until `step()` releases it."""

    def __init__(self) -> None:
        self._cond = asyncio.Condition()
        self._round = 0
        self._parked: Counter[int] = Counter()
        self.intervals: list[float] = []

    async def sleep(self, seconds: float) -> None:
        async with self._cond:
            mine = self._round
            self._parked[mine] += 1
            self.intervals.append(seconds)
            self._cond.notify_all()
            await self._cond.wait_for(lambda: self._round > mine)

    async def parked(self, tasks: int) -> None:
        """Wait until `tasks` probe tasks have finished their probe of the current round."""
        async with asyncio.timeout(5), self._cond:
            await self._cond.wait_for(lambda: self._parked[self._round] >= tasks)

    async def release(self) -> None:
        """Wake every parked task without waiting for them to park again."""
        async with self._cond:
            self._round += 1
            self._cond.notify_all()

    async def step(self, tasks: int) -> None:
        """Let every parked task probe once more, and wait until all `tasks` have done so."""
        await self.parked(tasks)
        await self.release()
        await self.parked(tasks)
