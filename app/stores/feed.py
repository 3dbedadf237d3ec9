"""A store's change feed: every subscriber gets every event, in publish order, from subscription on.

Shared by the stores so each only has to call `publish()` in commit order (on the event loop).
"""

from __future__ import annotations

import asyncio

from app.stores.base import WatchEvent


class Subscription:
    """One watcher's events as an async iterator; ends when the feed closes."""

    def __init__(self, feed: ChangeFeed) -> None:
        self._feed = feed
        self._queue: asyncio.Queue[WatchEvent | None] = asyncio.Queue()
        feed._queues.add(self._queue)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> WatchEvent:
        event = await self._queue.get()
        if event is None:
            self._feed._queues.discard(self._queue)
            raise StopAsyncIteration
        return event

    def pending(self) -> int:
        """Events published but not yet taken."""
        return self._queue.qsize()

    async def aclose(self) -> None:
        """Stop receiving events."""
        self._feed._queues.discard(self._queue)


class ChangeFeed:
    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[WatchEvent | None]] = set()

    def subscribe(self) -> Subscription:
        """Registered at once (not on first iteration), so no later event is missed."""
        return Subscription(self)

    def publish(self, event: WatchEvent) -> None:
        for queue in list(self._queues):
            queue.put_nowait(event)

    def close(self) -> None:
        """End every subscription."""
        for queue in list(self._queues):
            queue.put_nowait(None)
        self._queues.clear()
