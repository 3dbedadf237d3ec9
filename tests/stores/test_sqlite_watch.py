"""The change feed: every write after watch(), in commit order, with spec_changed as the reconciler needs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from app.domain.gslb import GROUP, LEGACY_GROUP, GslbStatus
from app.stores.base import EventType, ObjectKey, WatchEvent
from app.stores.sqlite import SqliteStore
from tests.support.gslb_factory import make_gslb

KEY = ObjectKey(GROUP, "test-gslb", "app")


async def drain(watch: AsyncIterator[WatchEvent], count: int) -> list[WatchEvent]:
    return [await asyncio.wait_for(anext(watch), 5) for _ in range(count)]


async def test_event_per_write_with_spec_changed(store: SqliteStore) -> None:
    await store.create(make_gslb("before"))  # before the watch: not seen
    watch = store.watch()

    steps: list[tuple[str, EventType, bool]] = []

    created = await store.create(make_gslb("app"))
    steps.append(("create", EventType.ADDED, True))
    labelled = make_gslb("app")
    labelled.metadata.labels = {"team": "a"}
    await store.update(labelled)
    steps.append(("label", EventType.MODIFIED, False))
    labelled.metadata.annotations = {"example.org/note": "x"}
    await store.update(labelled)
    steps.append(("foreign annotation", EventType.MODIFIED, False))
    labelled.metadata.annotations = {"example.org/note": "x", "k8gb.io/exposed-ip-addresses": "10.0.0.1"}
    await store.update(labelled)
    steps.append(("k8gb annotation", EventType.MODIFIED, True))
    await store.update_status(KEY, GslbStatus(geo_tag="eu"))
    steps.append(("status", EventType.MODIFIED, False))
    labelled.spec.strategy.dns_ttl_seconds = 10
    await store.update(labelled)
    steps.append(("spec", EventType.MODIFIED, True))
    await store.update(labelled)  # no-op: no event
    await store.create(make_gslb("app", group=LEGACY_GROUP))
    steps.append(("legacy create", EventType.ADDED, True))
    last = await store.delete(KEY)
    steps.append(("delete", EventType.DELETED, True))

    events = await drain(watch, len(steps))
    assert [(e.type, e.spec_changed) for e in events] == [(t, c) for _, t, c in steps]
    assert events[0].object.metadata.uid == created.metadata.uid
    assert events[-1].object.metadata.resource_version == last.metadata.resource_version
    rvs = [int(e.object.metadata.resource_version or 0) for e in events]
    assert rvs == sorted(rvs) and len(set(rvs)) == len(rvs)
    assert [e.object.group for e in events][-2:] == [LEGACY_GROUP, GROUP]


async def test_event_is_queued_before_the_write_returns(store: SqliteStore) -> None:
    watch = store.watch()
    created = await store.create(make_gslb("app"))
    # No yield to the loop in between: the event must already be waiting.
    assert watch.pending() == 1
    assert (await anext(watch)).object == created


async def test_concurrent_writes_arrive_in_commit_order_for_every_watcher(store: SqliteStore) -> None:
    watchers = [store.watch() for _ in range(3)]
    created = await asyncio.gather(*(store.create(make_gslb(f"app-{i}")) for i in range(30)))
    commit_order = sorted(created, key=lambda g: int(g.metadata.resource_version or 0))
    for watch in watchers:
        events = await drain(watch, 30)
        assert [e.object.name for e in events] == [g.name for g in commit_order]


async def test_close_ends_watch_and_aclose_unsubscribes(store: SqliteStore) -> None:
    leaving = store.watch()
    await leaving.aclose()
    staying = store.watch()
    await store.create(make_gslb("app"))
    assert [e.type for e in await drain(staying, 1)] == [EventType.ADDED]
    assert leaving.pending() == 0

    async def consume() -> list[WatchEvent]:
        return [e async for e in staying]

    task = asyncio.create_task(consume())
    await asyncio.sleep(0)
    await store.close()
    assert await asyncio.wait_for(task, 5) == []
