"""KubeGslbStore against the emulated API server: CRUD with Kubernetes semantics, errors, status through
the subresource, and the change feed with k8gb's update predicate."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import kmock
import pytest

from app.domain.gslb import LEGACY_GROUP, Gslb, GslbStatus, HealthStatus
from app.stores.base import AlreadyExists, Conflict, EventType, NotFound, ObjectKey, Unavailable, WatchEvent
from app.stores.kube.client import KubeClient, connect
from app.stores.kube.events import KubeEvents
from app.stores.kube.store import KubeGslbStore
from tests.support.gslb_factory import gslb_body, make_gslb
from tests.support.kmockapi import KubeApi, load_yaml_documents, running_api

NS = "test-gslb"
CRDS = Path(__file__).resolve().parents[3] / "chart" / "crds"


async def next_event(feed: object) -> WatchEvent:
    return await asyncio.wait_for(anext(feed), 5)  # type: ignore[call-overload]


async def test_create_get_update_delete(kube_store: KubeGslbStore) -> None:
    created = await kube_store.create(make_gslb("app"))
    assert created.metadata.uid and created.metadata.generation == 1 and created.metadata.resource_version
    key = ObjectKey.of(created)
    assert (await kube_store.get(key)).spec == created.spec

    changed = created.model_copy(deep=True)
    changed.spec.strategy.type = "failover"
    changed.spec.strategy.primary_geo_tag = "eu"
    updated = await kube_store.update(changed)
    assert updated.metadata.generation == 2

    with pytest.raises(Conflict):
        await kube_store.update(changed)  # still carries the first resourceVersion
    with pytest.raises(AlreadyExists):
        await kube_store.create(make_gslb("app"))
    with pytest.raises(Conflict):
        await kube_store.delete(key, resource_version=created.metadata.resource_version)

    unconditional = make_gslb("app", strategy="geoip")
    assert (await kube_store.update(unconditional)).spec.strategy.type == "geoip"

    deleted = await kube_store.delete(key)
    assert deleted.name == "app"
    with pytest.raises(NotFound):
        await kube_store.get(key)
    with pytest.raises(NotFound):
        await kube_store.delete(key)


async def test_dry_run_writes_reach_the_api_server_as_dry_runs_and_change_nothing(
    kube_store: KubeGslbStore, kube_api: KubeApi
) -> None:
    feed = kube_store.watch()
    answer = await kube_store.create(make_gslb("app"), dry_run=True)
    assert answer.name == "app" and not answer.metadata.uid and not answer.metadata.resource_version
    assert kube_api.objects("k8gb.io", "gslbs", NS) == []

    created = await kube_store.create(make_gslb("app"))
    assert (await next_event(feed)).type is EventType.ADDED
    changed = created.model_copy(deep=True)
    changed.spec.strategy.dns_ttl_seconds = 99
    assert (await kube_store.update(changed, dry_run=True)).spec.strategy.dns_ttl_seconds == 99
    key = ObjectKey.of(created)
    await kube_store.update_status(key, GslbStatus(geo_tag="xx"), dry_run=True)
    assert (await kube_store.delete(key, dry_run=True)).metadata.uid == created.metadata.uid
    stored = kube_api.get_object("k8gb.io", "gslbs", NS, "app")
    assert stored is not None and stored["metadata"]["resourceVersion"] == created.metadata.resource_version
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(anext(feed), 0.3)  # no watch heard of the dry runs
    await feed.aclose()


async def test_a_delete_passes_its_propagation_policy_on(
    kube_store: KubeGslbStore, kube_api: KubeApi
) -> None:
    created = await kube_store.create(make_gslb("app"))
    owner = {"apiVersion": "k8gb.io/v1beta1", "kind": "Gslb", "name": "app", "uid": created.metadata.uid}
    for name in ("kept", "collected"):
        kube_api.create_object(
            "networking.k8s.io",
            "v1",
            "ingresses",
            {"metadata": {"name": name, "namespace": NS, "ownerReferences": [owner]}, "spec": {}},
        )
    await kube_store.delete(ObjectKey.of(created), propagation="Orphan")
    assert [i["metadata"]["name"] for i in kube_api.objects("networking.k8s.io", "ingresses", NS)] == [
        "collected",
        "kept",
    ]  # orphaned: both stay
    again = await kube_store.create(make_gslb("app"))
    owner["uid"] = again.metadata.uid
    kube_api.create_object(
        "networking.k8s.io",
        "v1",
        "ingresses",
        {"metadata": {"name": "owned", "namespace": NS, "ownerReferences": [owner]}, "spec": {}},
    )
    await kube_store.delete(ObjectKey.of(again))
    assert "owned" not in [
        i["metadata"]["name"] for i in kube_api.objects("networking.k8s.io", "ingresses", NS)
    ]


async def test_the_feed_says_whether_a_write_set_the_traceparent(
    kube_store: KubeGslbStore, kube_api: KubeApi
) -> None:
    """What kubectl users write is the traceparent alone: it is a write's cause only if that write set it."""
    feed = kube_store.watch()
    body = gslb_body("app", namespace=NS)
    body["metadata"]["annotations"] = {"k8gb.io/traceparent": f"00-{1:032x}-{1:016x}-01"}
    kube_api.create_object("k8gb.io", "v1beta1", "gslbs", body)
    assert (await next_event(feed)).trace_written

    def edit(change: Any) -> None:
        obj = kube_api.get_object("k8gb.io", "gslbs", NS, "app")
        assert obj is not None
        change(obj)
        kube_api.update_object("k8gb.io", "gslbs", obj)

    edit(lambda obj: obj["spec"]["strategy"].update(dnsTtlSeconds=60))  # the annotation stays as it was
    assert not (await next_event(feed)).trace_written

    def trace(n: int) -> Any:
        return lambda obj: obj["metadata"]["annotations"].update(
            {"k8gb.io/traceparent": f"00-{n:032x}-{n:016x}-01"}
        )

    # Alone, a new traceparent changes nothing to reconcile (no event); with a change, it is its cause.
    edit(trace(2))
    edit(lambda obj: (trace(3)(obj), obj["spec"]["strategy"].update(dnsTtlSeconds=90)))
    event = await next_event(feed)
    assert event.object.spec.strategy.dns_ttl_seconds == 90 and event.trace_written
    assert not event.marker_written

    # A REST write marks the generation its context belongs to: the feed says the marker changed.
    edit(
        lambda obj: (
            obj["metadata"]["annotations"].update({"k8gb.io/traceparent-generation": "4"}),
            obj["spec"]["strategy"].update(dnsTtlSeconds=120),
        )
    )
    event = await next_event(feed)
    assert event.marker_written and not event.trace_written
    await feed.aclose()


async def test_status_is_replaced_through_the_subresource(
    kube_store: KubeGslbStore, kube_api: KubeApi
) -> None:
    created = await kube_store.create(make_gslb("app"))
    key = ObjectKey.of(created)
    two_hosts = GslbStatus(
        geo_tag="eu",
        service_health={
            "a.cloud.example.com": HealthStatus.HEALTHY,
            "b.cloud.example.com": HealthStatus.NOT_FOUND,
        },
    )
    first = await kube_store.update_status(key, two_hosts)
    assert first.status == two_hosts and first.metadata.generation == 1
    one_host = GslbStatus(geo_tag="eu", service_health={"a.cloud.example.com": HealthStatus.UNHEALTHY})
    second = await kube_store.update_status(key, one_host)
    stored = kube_api.get_object("k8gb.io", "gslbs", NS, "app")
    assert stored is not None and stored["status"]["serviceHealth"] == {"a.cloud.example.com": "Unhealthy"}
    assert second.spec == created.spec
    with pytest.raises(Conflict):
        await kube_store.update_status(key, two_hosts, resource_version=first.metadata.resource_version)


async def test_lists_both_groups_with_a_version(kube_store: KubeGslbStore) -> None:
    await kube_store.create(make_gslb("new"))
    await kube_store.create(make_gslb("old", group=LEGACY_GROUP))
    await kube_store.create(make_gslb("elsewhere", namespace="other"))
    items, version = await kube_store.list("k8gb.io")
    assert sorted(g.name for g in items) == ["elsewhere", "new"] and version.isdigit()
    legacy, _ = await kube_store.list(LEGACY_GROUP)
    assert [g.group for g in legacy] == [LEGACY_GROUP]
    scoped, _ = await kube_store.list("k8gb.io", NS)
    assert [g.name for g in scoped] == ["new"]


async def test_feed_reports_only_changes_that_need_a_reconcile(kube_store: KubeGslbStore) -> None:
    feed = kube_store.watch()
    created = await kube_store.create(make_gslb("app"))
    event = await next_event(feed)
    assert (event.type, event.spec_changed) == (EventType.ADDED, True)

    # A status write and a label change are left out: the next event is the annotation change.
    await kube_store.update_status(ObjectKey.of(created), GslbStatus(geo_tag="eu"))
    current = await kube_store.get(ObjectKey.of(created))
    current.metadata.labels = {"team": "dns"}
    current = await kube_store.update(current)
    current.metadata.annotations = {"k8gb.io/exposed-ip-addresses": "10.0.0.1"}
    current = await kube_store.update(current)
    event = await next_event(feed)
    assert (event.type, event.spec_changed) == (EventType.MODIFIED, True)
    assert event.object.metadata.annotations == {"k8gb.io/exposed-ip-addresses": "10.0.0.1"}

    current.spec.strategy.dns_ttl_seconds = 60
    current = await kube_store.update(current)
    event = await next_event(feed)
    assert (event.spec_changed, event.object.metadata.generation) == (True, 2)

    await kube_store.create(make_gslb("legacy", group=LEGACY_GROUP))
    event = await next_event(feed)
    assert (event.type, event.object.group) == (EventType.ADDED, LEGACY_GROUP)

    await kube_store.delete(ObjectKey.of(created))
    event = await next_event(feed)
    assert (event.type, event.object.name, event.spec_changed) == (EventType.DELETED, "app", True)


async def test_subscribing_then_listing_misses_nothing(kube_store: KubeGslbStore, kube_api: KubeApi) -> None:
    kube_api.create_object("k8gb.io", "v1beta1", "gslbs", gslb_body("before", namespace=NS))
    feed = kube_store.watch()
    kube_api.create_object("k8gb.io", "v1beta1", "gslbs", gslb_body("between", namespace=NS))
    items, _ = await kube_store.list("k8gb.io")
    kube_api.create_object("k8gb.io", "v1beta1", "gslbs", gslb_body("after", namespace=NS))
    seen = {g.name for g in items}
    while not {"before", "between", "after"} <= seen:
        seen.add((await next_event(feed)).object.name)


async def test_an_invalid_resource_is_reported_not_fed(kube: KubeClient, kube_api: KubeApi) -> None:
    store = KubeGslbStore(kube, events=KubeEvents(kube))
    await store.start()
    try:
        feed = store.watch()
        kube_api.create_object(
            "k8gb.io", "v1beta1", "gslbs", gslb_body("bad", namespace=NS, strategy="nearest")
        )
        kube_api.create_object("k8gb.io", "v1beta1", "gslbs", gslb_body("good", namespace=NS))
        assert (await next_event(feed)).object.name == "good"
        async with asyncio.timeout(5):
            while not kube_api.objects("", "events", NS):
                await asyncio.sleep(0.01)
        (event,) = kube_api.objects("", "events", NS)
        assert (event["type"], event["reason"], event["involvedObject"]["name"]) == (
            "Warning",
            "InvalidSpec",
            "bad",
        )
        assert "unsupported strategy type 'nearest'" in event["message"]
    finally:
        await store.close()


async def test_an_invalid_resource_there_before_start_is_reported_when_listed(
    kube: KubeClient, kube_api: KubeApi
) -> None:
    kube_api.create_object("k8gb.io", "v1beta1", "gslbs", gslb_body("bad", namespace=NS, strategy="nearest"))
    kube_api.create_object("k8gb.io", "v1beta1", "gslbs", gslb_body("good", namespace=NS))
    store = KubeGslbStore(kube, events=KubeEvents(kube))
    await store.start()
    try:
        assert [g.name for g in store.list_cached("k8gb.io") or []] == ["good"]
        assert [g.name for g in store.list_cached("k8gb.io") or []] == ["good"]
        async with asyncio.timeout(5):
            while not kube_api.objects("", "events", NS):
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # a second report would be on its way by now
        (event,) = kube_api.objects("", "events", NS)
        assert (event["reason"], event["involvedObject"]["name"]) == ("InvalidSpec", "bad")
    finally:
        await store.close()


async def test_an_unreachable_api_is_unavailable(kube_store: KubeGslbStore, kube_api: KubeApi) -> None:
    kube_api.next_request(kmock.action.FETCH, kmock.resource("k8gb.io", "v1beta1", "gslbs")) << 503
    with pytest.raises(Unavailable):
        await kube_store.get(ObjectKey("k8gb.io", NS, "any"))


async def test_a_missing_legacy_crd_reads_as_empty(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        api.install_crds(load_yaml_documents([CRDS / "k8gb.io_gslbs.yaml"]))
        client = await connect(str(api.kubeconfig))
        store = KubeGslbStore(client)
        try:
            await asyncio.wait_for(store.start(), 5)
            assert await store.list(LEGACY_GROUP) == ([], "")
        finally:
            await store.close()
            await client.close()


async def created_and_cached(store: KubeGslbStore, name: str) -> Gslb:
    """A new Gslb, once the store's informer holds it."""
    created = await store.create(make_gslb(name))
    async with asyncio.timeout(5):
        while store.informers["k8gb.io"].get(NS, name) is None:
            await asyncio.sleep(0.01)
    return created


async def test_cached_reads_see_our_own_write_before_the_watch_does(
    kube_store: KubeGslbStore, kube_api: KubeApi
) -> None:
    created = await created_and_cached(kube_store, "app")
    key = ObjectKey.of(created)
    await kube_store.informers["k8gb.io"].stop()  # the cache stays at generation 1 from here on
    changed = created.model_copy(deep=True)
    changed.spec.strategy.dns_ttl_seconds = 77
    await kube_store.update(changed)
    assert (await kube_store.get_cached(key)).spec.strategy.dns_ttl_seconds == 77
    assert (await kube_store.get_cached(key)).metadata.generation == 2
    with pytest.raises(NotFound):
        await kube_store.get_cached(ObjectKey("k8gb.io", NS, "nobody"))


async def test_a_status_write_on_a_stale_cache_retries_from_the_api(
    kube_store: KubeGslbStore, kube_api: KubeApi
) -> None:
    created = await created_and_cached(kube_store, "app")
    key = ObjectKey.of(created)
    # Someone else changes the object; no await in between, so the informer cannot have seen it.
    theirs = kube_api.get_object("k8gb.io", "gslbs", NS, "app")
    assert theirs is not None
    theirs["metadata"].setdefault("labels", {})["team"] = "blue"
    kube_api.update_object("k8gb.io", "gslbs", theirs)
    before = len(list(kube_api))
    status = GslbStatus(geo_tag="eu", service_health={"a.cloud.example.com": HealthStatus.HEALTHY})
    await kube_store.write_status_cached(key, status)
    stored = kube_api.get_object("k8gb.io", "gslbs", NS, "app")
    assert stored is not None and stored["status"]["serviceHealth"] == {"a.cloud.example.com": "Healthy"}
    assert stored["metadata"]["labels"] == {"team": "blue"}
    methods = [r.method.value for r in list(kube_api)[before:]]
    assert methods == ["PUT", "GET", "PUT"]  # the conditional PUT met a 409, then read-modify-write


async def test_a_write_reply_slower_than_the_watch_is_not_held_as_a_second_copy(
    kube_store: KubeGslbStore, kube_api: KubeApi
) -> None:
    """At a cold start the watch event of a write often beats the write's reply; the reply must not
    then be kept (a second copy of the object until it next changes: 30% of the Gslbs at 10,000)."""
    created = await created_and_cached(kube_store, "app")
    informer, cache = kube_store.informers["k8gb.io"], kube_store.latest["k8gb.io"]
    reply = kube_api.get_object("k8gb.io", "gslbs", NS, "app")
    assert reply is not None and reply["metadata"]["resourceVersion"] == created.metadata.resource_version
    cache.wrote(reply)  # the reply arrives after the informer has shown this version
    read = await cache.get(NS, "app")
    assert read is not reply and read == informer.get(NS, "app")  # the informer's copy, not a held one
    newer = {**reply, "metadata": {**reply["metadata"], "resourceVersion": str(10**9)}}
    cache.wrote(newer)  # a reply the informer has not caught up with is what reads see
    assert await cache.get(NS, "app") is newer
