"""`watch_resource` against the emulated API server: list then watch, 410, dropped streams, bookmarks,
server errors, an absent resource; every change exactly once, in order."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import kmock
import pytest

from app.stores.kube.client import INGRESS, KubeClient, Resource
from app.stores.kube.watch import Backoff, EventType, Informer, ResourceEvent, watch_resource
from tests.support.kmockapi import KubeApi

NS = "default"
WATCH_INGRESSES = (kmock.action.WATCH, kmock.resource("networking.k8s.io", "v1", "ingresses"))


def ingress(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": NS, "labels": labels}, "spec": {}}


class Collector:
    """Runs one feed in a task and records what it yields, as (type, name, resourceVersion)."""

    def __init__(self, feed: AsyncIterator[ResourceEvent]) -> None:
        self.events: list[ResourceEvent] = []
        self._feed = feed
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for event in self._feed:
            self.events.append(event)

    def seen(self) -> list[tuple[str, str]]:
        return [(e.type.value, e.object.get("metadata", {}).get("name", "")) for e in self.events]

    async def until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.01)

    async def synced(self, times: int = 1) -> None:
        await self.until(lambda: sum(e.type == EventType.SYNCED for e in self.events) >= times)

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@pytest.fixture
async def collect(kube: KubeClient) -> AsyncIterator[Callable[..., Collector]]:
    collectors: list[Collector] = []

    def start(res: Resource = INGRESS, **kwargs: Any) -> Collector:
        kwargs.setdefault("backoff", Backoff(initial=0.01, maximum=0.05))
        collector = Collector(watch_resource(kube, res, **kwargs))
        collectors.append(collector)
        return collector

    yield start
    for collector in collectors:
        await collector.stop()


def watch_versions(api: KubeApi) -> list[str]:
    return [r.params.get("resourceVersion", "") for r in api if r.action == kmock.action.WATCH]


async def test_lists_then_watches_from_the_list_version(kube_api: KubeApi, collect: Any) -> None:
    kube_api.create_object("networking.k8s.io", "v1", "ingresses", ingress("a"))
    kube_api.create_object("networking.k8s.io", "v1", "ingresses", ingress("b"))
    listed_at = str(kube_api.resource_version)
    feed = collect()
    await feed.synced()
    await feed.until(lambda: kube_api.watchers_of("ingresses") == 1)
    a = kube_api.get_object("networking.k8s.io", "ingresses", NS, "a")
    assert a is not None
    a["metadata"]["labels"] = {"x": "y"}
    kube_api.update_object("networking.k8s.io", "ingresses", a)
    kube_api.delete_object("networking.k8s.io", "ingresses", NS, "b")
    await feed.until(lambda: len(feed.events) == 5)
    assert feed.seen() == [
        ("ADDED", "a"),
        ("ADDED", "b"),
        ("SYNCED", ""),
        ("MODIFIED", "a"),
        ("DELETED", "b"),
    ]
    assert feed.events[3].old is not None and feed.events[3].old["metadata"].get("labels") == {}
    assert watch_versions(kube_api) == [listed_at]


async def test_410_relists_and_emits_only_what_changed_meanwhile(kube_api: KubeApi, collect: Any) -> None:
    kube_api.create_object("networking.k8s.io", "v1", "ingresses", ingress("a"))
    kube_api.create_object("networking.k8s.io", "v1", "ingresses", ingress("b"))
    kube_api.create_object("networking.k8s.io", "v1", "ingresses", ingress("same"))

    def changes_then_expired() -> dict[str, Any]:
        """The history the client needs is gone, and the cluster moved on meanwhile."""
        a = kube_api.get_object("networking.k8s.io", "ingresses", NS, "a")
        assert a is not None
        a["spec"] = {"ingressClassName": "new"}
        kube_api.update_object("networking.k8s.io", "ingresses", a)
        kube_api.delete_object("networking.k8s.io", "ingresses", NS, "b")
        kube_api.create_object("networking.k8s.io", "v1", "ingresses", ingress("c"))
        kube_api.compact()
        status = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old resource version"}
        return {"type": "ERROR", "object": status}

    kube_api.next_request(*WATCH_INGRESSES) << changes_then_expired
    feed = collect()
    await feed.synced(times=2)
    kube_api.create_object("networking.k8s.io", "v1", "ingresses", ingress("d"))
    await feed.until(lambda: ("ADDED", "d") in feed.seen())
    assert feed.seen() == [
        ("ADDED", "a"),
        ("ADDED", "b"),
        ("ADDED", "same"),
        ("SYNCED", ""),
        ("MODIFIED", "a"),
        ("ADDED", "c"),
        ("DELETED", "b"),
        ("SYNCED", ""),
        ("ADDED", "d"),
    ]


async def test_a_compacted_history_met_on_reconnect_relists_without_repeats(
    kube_api: KubeApi, collect: Any
) -> None:
    kube_api.create_object("networking.k8s.io", "v1", "ingresses", ingress("a"))
    feed = collect()
    await feed.synced()
    await feed.until(lambda: kube_api.watchers_of("ingresses") == 1)
    kube_api.create_object("networking.k8s.io", "v1", "ingresses", ingress("b"))
    await feed.until(lambda: ("ADDED", "b") in feed.seen())
    kube_api.drop_watches(abort=True)  # queued first: the stream dies before it could carry what follows
    kube_api.create_object("networking.k8s.io", "v1", "ingresses", ingress("unseen"))
    kube_api.compact()  # the feed's last version is now older than the history
    await feed.synced(times=2)
    assert feed.seen() == [
        ("ADDED", "a"),
        ("SYNCED", ""),
        ("ADDED", "b"),
        ("ADDED", "unseen"),
        ("SYNCED", ""),
    ]


@pytest.mark.parametrize("abort", [False, True], ids=["clean-end", "connection-abort"])
async def test_a_dropped_stream_resumes_from_the_last_version(
    kube_api: KubeApi, collect: Any, abort: bool
) -> None:
    feed = collect()
    await feed.synced()
    await feed.until(lambda: kube_api.watchers_of("ingresses") == 1)
    kube_api.create_object("networking.k8s.io", "v1", "ingresses", ingress("before"))
    await feed.until(lambda: len(feed.events) == 2)
    kube_api.drop_watches(abort=abort)
    kube_api.create_object("networking.k8s.io", "v1", "ingresses", ingress("while-down"))
    await feed.until(lambda: len(feed.events) == 3)
    kube_api.create_object("networking.k8s.io", "v1", "ingresses", ingress("after"))
    await feed.until(lambda: len(feed.events) == 4)
    assert feed.seen() == [("SYNCED", ""), ("ADDED", "before"), ("ADDED", "while-down"), ("ADDED", "after")]
    before = feed.events[1].object["metadata"]["resourceVersion"]
    assert watch_versions(kube_api)[1] == before


async def test_replayed_and_unknown_events_are_not_applied_twice(kube_api: KubeApi, collect: Any) -> None:
    created = kube_api.create_object("networking.k8s.io", "v1", "ingresses", ingress("a"))
    feed = collect()
    await feed.synced()
    await feed.until(lambda: kube_api.watchers_of("ingresses") == 1)
    replay = {"type": "ADDED", "object": created}
    gone = {"type": "DELETED", "object": ingress("never-seen")}
    odd = {"type": "SOMETHING-NEW", "object": created}
    kube_api.next_request(*WATCH_INGRESSES) << (
        replay,
        odd,
        gone,
    )  # the next watch request gets these, then EOF
    kube_api.drop_watches()
    await feed.until(lambda: len(watch_versions(kube_api)) >= 3)
    kube_api.create_object("networking.k8s.io", "v1", "ingresses", ingress("b"))
    await feed.until(lambda: ("ADDED", "b") in feed.seen())
    assert feed.seen() == [("ADDED", "a"), ("SYNCED", ""), ("ADDED", "b")]


async def test_bookmarks_move_the_resume_version_forward(kube_api: KubeApi, collect: Any) -> None:
    feed = collect()
    await feed.synced()
    await feed.until(lambda: kube_api.watchers_of("ingresses") == 1)
    kube_api.create_object("", "v1", "services", {"metadata": {"name": "other-kind", "namespace": NS}})
    assert kube_api.bookmark() == 1
    bookmarked = str(kube_api.resource_version)
    await asyncio.sleep(0.05)
    kube_api.drop_watches()
    await feed.until(lambda: len(watch_versions(kube_api)) == 2)
    assert watch_versions(kube_api)[1] == bookmarked
    assert all(
        r.params.get("allowWatchBookmarks") == "true" for r in kube_api if r.action == kmock.action.WATCH
    )
    assert feed.seen() == [("SYNCED", "")]


async def test_server_errors_are_retried(kube_api: KubeApi, collect: Any) -> None:
    kube_api.create_object("networking.k8s.io", "v1", "ingresses", ingress("a"))
    kube_api.next_request(kmock.action.LIST, kmock.resource("networking.k8s.io", "v1", "ingresses")) << 503
    kube_api.next_request(*WATCH_INGRESSES) << 500
    feed = collect()
    await feed.synced()
    await feed.until(lambda: kube_api.watchers_of("ingresses") == 1)
    kube_api.create_object("networking.k8s.io", "v1", "ingresses", ingress("b"))
    await feed.until(lambda: ("ADDED", "b") in feed.seen())
    assert feed.seen() == [("ADDED", "a"), ("SYNCED", ""), ("ADDED", "b")]


async def test_a_resource_not_served_reads_as_empty(kube_api: KubeApi, collect: Any) -> None:
    feed = collect(Resource("example.com", "v1", "things", "Thing"), absent_retry=60)
    await feed.synced()
    assert feed.seen() == [("SYNCED", "")]


async def test_informer_keeps_a_cache_and_fans_out_after_updating_it(
    kube_api: KubeApi, kube: KubeClient
) -> None:
    informer = Informer(kube, INGRESS, backoff=Backoff(initial=0.01))
    seen_in_handler: list[bool] = []
    informer.add_handler(
        lambda e: seen_in_handler.append(informer.get(NS, e.object["metadata"]["name"]) is not None)
    )
    kube_api.create_object("networking.k8s.io", "v1", "ingresses", ingress("a"))
    subscription = informer.subscribe()
    await informer.start()
    assert informer.get(NS, "a") is not None and seen_in_handler == [True]
    kube_api.create_object("networking.k8s.io", "v1", "ingresses", ingress("b"))
    first = await asyncio.wait_for(anext(subscription), 5)
    second = await asyncio.wait_for(anext(subscription), 5)
    assert [first.object["metadata"]["name"], second.object["metadata"]["name"]] == ["a", "b"]
    await informer.stop()
    with pytest.raises(StopAsyncIteration):
        await anext(subscription)


async def test_informer_reads_are_private_copies_and_keep_trims_only_the_cache(
    kube_api: KubeApi, kube: KubeClient
) -> None:
    """The cache is stored encoded: a reader that changes what it read changes nothing for the next
    reader, and a `keep` trims what is stored while handlers still get the whole object."""
    handled: list[ResourceEvent] = []
    informer = Informer(kube, INGRESS, keep=lambda obj: {"metadata": obj["metadata"]})
    informer.add_handler(handled.append)
    kube_api.create_object("networking.k8s.io", "v1", "ingresses", ingress("a", team="blue"))
    await informer.start()
    try:
        read = informer.get(NS, "a")
        assert read is not None and "spec" not in read and read["metadata"]["labels"] == {"team": "blue"}
        read["metadata"]["labels"]["team"] = "red"
        assert informer.get(NS, "a")["metadata"]["labels"] == {"team": "blue"}  # type: ignore[index]
        assert handled[0].object["spec"] == {}  # the handler saw the object whole
        stored = kube_api.get_object("networking.k8s.io", "ingresses", NS, "a")
        assert stored is not None
        stored["metadata"]["labels"] = {"team": "green"}
        kube_api.update_object("networking.k8s.io", "ingresses", stored)
        async with asyncio.timeout(5):
            while len(handled) < 2:
                await asyncio.sleep(0.01)
        assert handled[1].type == EventType.MODIFIED
        assert handled[1].old is not None and handled[1].old["metadata"]["labels"] == {"team": "blue"}
    finally:
        await informer.stop()
