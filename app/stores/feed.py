"""A change feed: every subscriber gets every item, in publish order, from the moment it subscribed.

Shared by the stores (their watch events) and the kube informers (resource events), so each only has
to call `publish()` in order, on the event loop.
"""

from __future__ import annotations

import asyncio


class Feed[T]:
    """One subscriber's items as an async iterator; ends when the fan-out closes."""

    def __init__(self, fanout: Fanout[T]) -> None:
        self._fanout = fanout
        self._queue: asyncio.Queue[T | None] = asyncio.Queue()
        fanout._queues.add(self._queue)

    def __aiter__(self) -> Feed[T]:
        return self

    async def __anext__(self) -> T:
        item = await self._queue.get()
        if item is None:
            self._fanout._queues.discard(self._queue)
            raise StopAsyncIteration
        return item

    def pending(self) -> int:
        """Items published but not yet taken."""
        return self._queue.qsize()

    async def aclose(self) -> None:
        """Stop receiving items."""
        self._fanout._queues.discard(self._queue)


class Fanout[T]:
    """One producer, many consumers, each with its own unbounded queue; `close()` ends every feed."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[T | None]] = set()

    def subscribe(self) -> Feed[T]:
        """Registered at once (not on first iteration), so no later item is missed."""
        return Feed(self)

    @property
    def subscribed(self) -> bool:
        """Whether anyone would get a published item (a producer may skip building one)."""
        return bool(self._queues)

    def publish(self, item: T) -> None:
        for queue in list(self._queues):
            queue.put_nowait(item)

    def close(self) -> None:
        """End every feed."""
        for queue in list(self._queues):
            queue.put_nowait(None)
        self._queues.clear()
