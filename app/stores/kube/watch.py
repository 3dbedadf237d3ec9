"""List, then watch from the list's resourceVersion: the informer loop with its hard cases handled.

`watch_resource` is one resource's change feed, built in three layers as kopf's watcher is:
- a list gives the state and the resourceVersion to watch from; each list is diffed against what was
  already seen, so a re-list emits only real changes (ADDED / MODIFIED / DELETED), then a SYNCED mark;
- a watch request from that version asks for bookmarks; BOOKMARK events only advance the version;
- "410 Gone/Expired" (an ERROR event or a 410 answer) means the history is compacted: re-list;
- a stream that ends (server timeout, dropped connection) is reopened from the last version seen;
  failures wait with exponential backoff and jitter, reset by the next event that arrives.
No event is applied twice: the cache (`ObjectTable`, objects kept encoded) keeps the last version per
(namespace, name), and an event whose resourceVersion is not newer than the cached one is a replay and
is dropped, as is a DELETED for an object never seen. Unknown event types are ignored.

`Informer` runs one feed in a task, keeps its cache readable by others, and fans events out to
synchronous handlers and asynchronous subscribers, in order, after the cache has been updated.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson

from app.stores.feed import Fanout, Feed
from app.stores.kube.client import KubeApiError, KubeClient, Obj, Resource
from app.stores.kube.objtable import ObjectTable, resource_version

log = logging.getLogger("pygslb.kube.watch")

ObjKey = tuple[str, str]  # namespace ("" when cluster-scoped), name


class EventType(StrEnum):
    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"
    SYNCED = "SYNCED"  # a (re-)list has been applied: the cache is complete as of that list


@dataclass(frozen=True, slots=True)
class ResourceEvent:
    type: EventType
    object: Obj
    replaced: Obj | bytes | None = None  # the cached version this event replaces (MODIFIED, DELETED)

    @property
    def old(self) -> Obj | None:
        """The replaced version, decoded on demand (most handlers never look at it)."""
        if isinstance(self.replaced, bytes):
            return orjson.loads(self.replaced)  # type: ignore[no-any-return]
        return self.replaced


@dataclass(slots=True)
class Backoff:
    """Exponential delays with jitter: initial, ×factor per failure, capped; `reset()` after success."""

    initial: float = 0.2
    maximum: float = 10.0
    factor: float = 2.0
    _current: float = field(default=0.0, init=False)

    def next(self) -> float:
        self._current = self.initial if not self._current else min(self._current * self.factor, self.maximum)
        return self._current * random.uniform(0.5, 1.0)

    def reset(self) -> None:
        self._current = 0.0


def object_key(obj: Obj) -> ObjKey:
    meta = obj.get("metadata") or {}
    return (meta.get("namespace") or "", meta.get("name") or "")


def _not_newer(new: str, old: str) -> bool:
    """True when `new` does not come after `old` (a replay). Versions are compared as etcd revisions
    when both are numeric, as the API server's are; otherwise only equality counts."""
    if new.isdigit() and old.isdigit():
        return int(new) <= int(old)
    return new == old


def apply_event(cache: ObjectTable, kind: str, obj: Obj) -> ResourceEvent | None:
    """Apply one watch event to the cache; the event to emit, or None for a replay or a no-op."""
    key = object_key(obj)
    version = cache.version(key)
    if kind == EventType.DELETED:
        if version is None:
            return None
        return ResourceEvent(EventType.DELETED, obj, cache.pop(key))
    if version is not None and _not_newer(resource_version(obj), version):
        return None
    old = cache.encoded(key)
    cache.put(key, obj)
    return ResourceEvent(EventType.MODIFIED if old is not None else EventType.ADDED, obj, old)


def diff_list(cache: ObjectTable, items: list[Obj]) -> list[ResourceEvent]:
    """Bring the cache to a fresh list: the changes it contained that the cache had not seen."""
    events: list[ResourceEvent] = []
    seen: set[ObjKey] = set()
    for obj in items:
        key = object_key(obj)
        seen.add(key)
        version = cache.version(key)
        if version is None:
            cache.put(key, obj)
            events.append(ResourceEvent(EventType.ADDED, obj))
        elif resource_version(obj) != version:
            old = cache.encoded(key)
            cache.put(key, obj)
            events.append(ResourceEvent(EventType.MODIFIED, obj, old))
    for key in [k for k in cache if k not in seen]:
        gone = cache.pop(key)
        assert gone is not None
        events.append(ResourceEvent(EventType.DELETED, orjson.loads(gone), gone))
    return events


async def watch_resource(
    client: KubeClient,
    res: Resource,
    *,
    namespace: str | None = None,
    label_selector: str | None = None,
    cache: ObjectTable | None = None,
    timeout_seconds: int = 300,
    backoff: Backoff | None = None,
    absent_retry: float = 30.0,
) -> AsyncGenerator[ResourceEvent, None]:
    """The endless change feed of one resource (see the module docstring); stop it with `aclose()`.

    `cache` (namespace, name → last version) may be shared with readers; it is updated before each
    event is yielded. A resource the server does not serve (CRD not installed) reads as empty and is
    listed again every `absent_retry` seconds.
    """
    cache = ObjectTable() if cache is None else cache
    backoff = backoff or Backoff()
    version: str | None = None
    while True:
        if version is None:
            try:
                listing = await client.list(res, namespace, label_selector=label_selector)
            except KubeApiError as exc:
                if exc.status == 404:
                    for event in diff_list(cache, []):
                        yield event
                    yield ResourceEvent(EventType.SYNCED, {})
                    log.info("%s is not served (yet); listing again in %.0fs", res.plural, absent_retry)
                    await asyncio.sleep(absent_retry)
                    continue
                delay = backoff.next()
                log.warning("list %s failed (%s); retrying in %.1fs", res.plural, exc, delay)
                await asyncio.sleep(delay)
                continue
            version = str((listing.get("metadata") or {}).get("resourceVersion") or "")
            items = [_typed(res, obj) for obj in listing.get("items") or []]
            for event in diff_list(cache, items):
                yield event
            yield ResourceEvent(EventType.SYNCED, {})
        delivered = False
        try:
            async with client.watch_stream(
                res,
                namespace,
                resource_version=version,
                timeout_seconds=timeout_seconds,
                label_selector=label_selector,
            ) as stream:
                async for raw in stream:
                    kind = str(raw.get("type") or "")
                    obj = raw.get("object") or {}
                    if kind == "ERROR":
                        code = int(obj.get("code") or 500)
                        raise KubeApiError(
                            code, str(obj.get("reason") or ""), str(obj.get("message") or ""), obj
                        )
                    if kind == "BOOKMARK":
                        version = resource_version(obj) or version
                        continue
                    if kind not in (EventType.ADDED, EventType.MODIFIED, EventType.DELETED):
                        continue
                    delivered = True
                    backoff.reset()
                    applied = apply_event(cache, kind, _typed(res, obj))
                    version = resource_version(obj) or version
                    if applied is not None:
                        yield applied
        except KubeApiError as exc:
            if exc.status in (404, 410):
                log.info("watch %s from %s: %s; re-listing", res.plural, version, exc.reason or exc.status)
                version = None
                continue
            delay = backoff.next()
            log.warning("watch %s failed (%s); reconnecting in %.1fs", res.plural, exc, delay)
            await asyncio.sleep(delay)
            continue
        if not delivered:
            # An empty stream is normal after a server-side timeout, but not in a tight loop.
            await asyncio.sleep(backoff.next())


def _typed(res: Resource, obj: Obj) -> Obj:
    """List items of built-in kinds come without apiVersion/kind; give every object both."""
    if "apiVersion" not in obj or "kind" not in obj:
        obj = {"apiVersion": res.api_version, "kind": res.kind, **obj}
    return obj


class Informer:
    """One resource's feed run in a task: a readable cache plus ordered fan-out (see module docstring)."""

    def __init__(
        self,
        client: KubeClient,
        res: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        timeout_seconds: int = 300,
        backoff: Backoff | None = None,
        keep: Callable[[Obj], Obj] | None = None,
    ) -> None:
        """`keep` trims what the cache stores of each object (see `ObjectTable`); handlers get it whole."""
        self.client = client
        self.res = res
        self.namespace = namespace
        self.label_selector = label_selector
        self.timeout_seconds = timeout_seconds
        self.backoff = backoff
        self.cache = ObjectTable(keep)
        self.synced = asyncio.Event()
        self._handlers: list[Callable[[ResourceEvent], Any]] = []
        self._fanout: Fanout[ResourceEvent] = Fanout()
        self._task: asyncio.Task[None] | None = None

    # --- lifecycle ---------------------------------------------------------------------------------

    async def start(self, *, wait: bool = True) -> None:
        """Start the feed (idempotent); with `wait`, return once the first list is in the cache."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"informer-{self.res.plural}")
        if wait:
            await self.synced.wait()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._fanout.close()

    # --- readers -----------------------------------------------------------------------------------

    def get(self, namespace: str | None, name: str) -> Obj | None:
        return self.cache.get((namespace or "", name))

    def items(self) -> list[Obj]:
        return self.cache.values()

    def add_handler(self, handler: Callable[[ResourceEvent], Any]) -> None:
        """`handler(event)` runs for every change, in order, after the cache reflects it; never blocks."""
        self._handlers.append(handler)

    def subscribe(self) -> Feed[ResourceEvent]:
        return self._fanout.subscribe()

    # --- the feed ----------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            feed = watch_resource(
                self.client,
                self.res,
                namespace=self.namespace,
                label_selector=self.label_selector,
                cache=self.cache,
                timeout_seconds=self.timeout_seconds,
                backoff=self.backoff,
            )
            try:
                async for event in feed:
                    if event.type == EventType.SYNCED:
                        self.synced.set()
                        continue
                    self._dispatch(event)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not end the feed: start over from a list (diffed, not replayed)
                log.exception("informer %s failed; restarting", self.res.plural)
                await asyncio.sleep(1.0)
            finally:
                await feed.aclose()

    def _dispatch(self, event: ResourceEvent) -> None:
        for handler in list(self._handlers):
            try:
                handler(event)
            except Exception:
                log.exception("informer %s: handler failed on %s", self.res.plural, event.type)
        self._fanout.publish(event)
