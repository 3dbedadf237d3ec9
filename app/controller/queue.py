"""A keyed work queue in the manner of client-go's: duplicates collapse, one worker per key at a time.

Each pending key carries the causes that asked for it (write contexts for tracing); when several
writes arrive before a worker picks the key up, they collapse into one item with all their causes.
A key re-added while it is being processed is held back and queued again when the worker is done,
so no change is ever missed and no key is reconciled twice at once.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field

#: Causes (and reasons) one item keeps, the newest: as many links as a span holds by default
#: (OTEL_SPAN_LINK_COUNT_LIMIT), so a write storm on one key during a slow reconcile holds bounded memory.
MAX_CAUSES = 128


@dataclass(slots=True)
class Item[K: Hashable, C]:
    key: K
    causes: list[C] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    dropped_causes: int = 0  # older causes let go beyond MAX_CAUSES

    def add(self, cause: C | None, reason: str) -> None:
        if cause is not None:
            self.causes.append(cause)
            if len(self.causes) > MAX_CAUSES:
                del self.causes[0]
                self.dropped_causes += 1
        if reason:
            self.reasons.append(reason)
            if len(self.reasons) > MAX_CAUSES:
                del self.reasons[0]

    def absorb(self, other: Item[K, C]) -> None:
        """Take `other`'s causes and reasons, which came later."""
        self.dropped_causes += other.dropped_causes
        for cause in other.causes:
            self.add(cause, "")
        for reason in other.reasons:
            self.add(None, reason)


class WorkQueue[K: Hashable, C]:
    def __init__(self, *, base_delay: float = 0.05, max_delay: float = 300.0, jitter: float = 0.1) -> None:
        self._order: deque[K] = deque()
        self._dirty: dict[K, Item[K, C]] = {}
        self._processing: set[K] = set()
        self._held: dict[K, Item[K, C]] = {}
        self._timers: dict[K, asyncio.TimerHandle] = {}
        self._failures: dict[K, int] = {}
        self._wakeup = asyncio.Event()
        self._closed = False
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.jitter = jitter

    def __len__(self) -> int:
        return len(self._order)

    def add(self, key: K, cause: C | None = None, reason: str = "") -> None:
        """Queue the key now; causes and reasons accumulate until a worker takes it."""
        if self._closed:
            return
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        if key in self._processing:
            item = self._held.setdefault(key, Item(key))
        elif key in self._dirty:
            item = self._dirty[key]
        else:
            item = Item(key)
            self._dirty[key] = item
            self._order.append(key)
            self._wakeup.set()
        item.add(cause, reason)

    def add_after(self, key: K, delay: float, reason: str = "") -> None:
        """Queue the key after `delay` seconds unless something queues it sooner."""
        if self._closed:
            return
        old = self._timers.pop(key, None)
        if old is not None:
            old.cancel()
        loop = asyncio.get_running_loop()
        self._timers[key] = loop.call_later(delay, self._fire, key, reason)

    def _fire(self, key: K, reason: str) -> None:
        self._timers.pop(key, None)
        self.add(key, None, reason)

    def backoff(self, key: K, reason: str = "error") -> float:
        """Requeue after an exponentially growing delay; returns the delay chosen."""
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        delay = float(min(self.max_delay, self.base_delay * (2.0**failures)))
        delay *= 1 + random.uniform(-self.jitter, self.jitter)
        self.add_after(key, delay, reason)
        return delay

    def failures(self, key: K) -> int:
        return self._failures.get(key, 0)

    def forget(self, key: K) -> None:
        """Reset the key's backoff after a success."""
        self._failures.pop(key, None)

    def cancel(self, key: K) -> None:
        """Drop scheduled work for a key (it was deleted)."""
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        self._failures.pop(key, None)

    async def get(self) -> Item[K, C]:
        while True:
            if self._closed:
                raise asyncio.CancelledError("queue closed")
            if self._order:
                key = self._order.popleft()
                item = self._dirty.pop(key)
                self._processing.add(key)
                return item
            self._wakeup.clear()
            await self._wakeup.wait()

    def done(self, key: K) -> None:
        """The worker finished `key`; anything that arrived meanwhile is queued now."""
        self._processing.discard(key)
        held = self._held.pop(key, None)
        if held is not None and not self._closed:
            if key in self._dirty:
                self._dirty[key].absorb(held)
            else:
                self._dirty[key] = held
                self._order.append(key)
                self._wakeup.set()

    def pending(self, key: K) -> bool:
        return key in self._dirty or key in self._held

    @property
    def idle(self) -> bool:
        return not self._order and not self._processing and not self._held

    def close(self) -> None:
        self._closed = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._wakeup.set()
