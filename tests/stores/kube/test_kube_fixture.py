"""The emulated API server's adaptations to kmock, each checked over plain HTTP (no code under test)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import kmock
import pytest

from tests.support.kmockapi import KubeApi

GSLBS = "/apis/k8gb.io/v1beta1/namespaces/default/gslbs"
INGRESSES = "/apis/networking.k8s.io/v1/namespaces/default/ingresses"


def gslb(name: str, strategy: str = "roundRobin", **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "k8gb.io/v1beta1",
        "kind": "Gslb",
        "metadata": {"name": name, **meta},
        "spec": {"strategy": {"type": strategy}},
    }


@pytest.fixture
async def http(kube_api: KubeApi) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(kube_api.server_url) as session:
        yield session


async def call(
    http: aiohttp.ClientSession, method: str, path: str, body: Any = None, **kw: Any
) -> tuple[int, Any]:
    async with http.request(method, path, json=body, **kw) as resp:
        text = await resp.text()
        return resp.status, json.loads(text) if text else None


async def read_events(resp: aiohttp.ClientResponse, count: int) -> list[dict[str, Any]]:
    events = []
    for _ in range(count):
        line = await asyncio.wait_for(resp.content.readline(), 5)
        if not line:
            break
        events.append(json.loads(line))
    return events


async def test_create_answers_201_with_server_fields(http: aiohttp.ClientSession) -> None:
    status, created = await call(http, "POST", GSLBS, gslb("a"))
    assert status == 201
    meta = created["metadata"]
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z")
    assert meta["generation"] == 1 and meta["resourceVersion"].isdigit()
    status, again = await call(http, "POST", GSLBS, gslb("a"))
    assert (status, again["reason"]) == (409, "AlreadyExists")


async def test_put_bumps_generation_only_for_spec_and_rejects_stale_versions(
    http: aiohttp.ClientSession,
) -> None:
    _, created = await call(http, "POST", GSLBS, gslb("a"))
    labelled = json.loads(json.dumps(created))
    labelled["metadata"]["labels"] = {"team": "x"}
    status, after_label = await call(http, "PUT", f"{GSLBS}/a", labelled)
    assert status == 200 and after_label["metadata"]["generation"] == 1
    assert int(after_label["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])

    after_label["spec"]["strategy"]["type"] = "failover"
    _, after_spec = await call(http, "PUT", f"{GSLBS}/a", after_label)
    assert after_spec["metadata"]["generation"] == 2

    status, stale = await call(http, "PUT", f"{GSLBS}/a", after_label)  # the version it carries is old now
    assert (status, stale["reason"]) == (409, "Conflict")

    no_version = gslb("a")
    status, invalid = await call(http, "PUT", f"{GSLBS}/a", no_version)
    assert (status, invalid["reason"]) == (422, "Invalid")

    _, unchanged = await call(http, "PUT", f"{GSLBS}/a", after_spec)
    assert unchanged["metadata"]["resourceVersion"] == after_spec["metadata"]["resourceVersion"]


async def test_status_subresource_is_separate_from_the_object(http: aiohttp.ClientSession) -> None:
    _, created = await call(http, "POST", GSLBS, {**gslb("a"), "status": {"geoTag": "ignored"}})
    assert "status" not in created
    created["status"] = {"geoTag": "eu"}
    _, with_status = await call(http, "PUT", f"{GSLBS}/a/status", created)
    assert with_status["status"] == {"geoTag": "eu"} and with_status["metadata"]["generation"] == 1
    with_status["status"] = {"geoTag": "us"}
    with_status["spec"]["strategy"]["type"] = "geoip"
    _, main = await call(http, "PUT", f"{GSLBS}/a", with_status)
    assert main["status"] == {"geoTag": "eu"} and main["spec"]["strategy"]["type"] == "geoip"
    status, patched = await call(
        http,
        "PATCH",
        f"{GSLBS}/a/status",
        {"status": {"hosts": "h"}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert status == 200 and patched["status"] == {"geoTag": "eu", "hosts": "h"}


async def test_lists_have_kind_and_filter_by_selectors(http: aiohttp.ClientSession) -> None:
    for name, labels in (("a", {"app": "x", "tier": "web"}), ("b", {"app": "y"}), ("c", {})):
        await call(http, "POST", INGRESSES, {"metadata": {"name": name, "labels": labels}, "spec": {}})
    cases = {
        "app=x": ["a"],
        "app!=x": ["b", "c"],
        "app in (x,y)": ["a", "b"],
        "app notin (x)": ["b", "c"],
        "tier": ["a"],
        "!tier": ["b", "c"],
        "app=x,tier=web": ["a"],
    }
    for selector, names in cases.items():
        status, listing = await call(http, "GET", INGRESSES, params={"labelSelector": selector})
        assert status == 200, selector
        assert listing["kind"] == "IngressList" and listing["apiVersion"] == "networking.k8s.io/v1"
        assert [i["metadata"]["name"] for i in listing["items"]] == names, selector
    _, by_field = await call(http, "GET", INGRESSES, params={"fieldSelector": "metadata.name=b"})
    assert [i["metadata"]["name"] for i in by_field["items"]] == ["b"]


async def test_watch_replays_from_a_version_and_expires_after_compaction(
    kube_api: KubeApi, http: aiohttp.ClientSession
) -> None:
    _, a = await call(http, "POST", GSLBS, gslb("a"))
    await call(http, "POST", GSLBS, gslb("b"))
    since = a["metadata"]["resourceVersion"]
    async with http.get(GSLBS, params={"watch": "True", "resourceVersion": since}) as resp:
        (event,) = await read_events(resp, 1)
    assert (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", "b")

    kube_api.compact()
    async with http.get(GSLBS, params={"watch": "true", "resourceVersion": since}) as resp:
        (event,) = await read_events(resp, 1)
        assert event["type"] == "ERROR" and event["object"]["code"] == 410
        assert await resp.content.readline() == b""


async def test_watch_sends_bookmarks_selector_transitions_and_can_be_dropped(
    kube_api: KubeApi, http: aiohttp.ClientSession
) -> None:
    _, created = await call(
        http, "POST", INGRESSES, {"metadata": {"name": "i", "labels": {"app": "x"}}, "spec": {}}
    )
    params = {
        "watch": "true",
        "resourceVersion": created["metadata"]["resourceVersion"],
        "allowWatchBookmarks": "true",
        "labelSelector": "app=x",
    }
    async with http.get(INGRESSES, params=params) as resp:
        await asyncio.sleep(0.05)
        assert kube_api.bookmark() == 1
        (bookmark,) = await read_events(resp, 1)
        assert bookmark["type"] == "BOOKMARK"
        assert bookmark["object"]["metadata"]["resourceVersion"] == str(kube_api.resource_version)
        created["metadata"]["labels"] = {"app": "other"}
        await call(http, "PUT", f"{INGRESSES}/i", created)
        (left,) = await read_events(resp, 1)
        assert left["type"] == "DELETED"  # no longer matches the selector
        kube_api.drop_watches()
        assert await asyncio.wait_for(resp.content.readline(), 5) == b""


async def test_deletion_honours_finalizers_and_collects_dependents(http: aiohttp.ClientSession) -> None:
    _, owner = await call(http, "POST", GSLBS, gslb("owner", finalizers=["test/hold"]))
    ref = {"apiVersion": "k8gb.io/v1beta1", "kind": "Gslb", "name": "owner", "uid": owner["metadata"]["uid"]}
    await call(http, "POST", INGRESSES, {"metadata": {"name": "dep", "ownerReferences": [ref]}, "spec": {}})
    _, deleting = await call(http, "DELETE", f"{GSLBS}/owner")
    assert deleting["metadata"]["deletionTimestamp"] and deleting["metadata"]["generation"] == 2
    assert (await call(http, "GET", f"{INGRESSES}/dep"))[0] == 200
    deleting["metadata"]["finalizers"] = []
    await call(http, "PUT", f"{GSLBS}/owner", deleting)
    assert (await call(http, "GET", f"{GSLBS}/owner"))[0] == 404
    assert (await call(http, "GET", f"{INGRESSES}/dep"))[0] == 404


async def deletion_events(http: aiohttp.ClientSession, since: str, count: int) -> list[tuple[str, str, Any]]:
    """The next `count` Gslb and Ingress events after `since`, in the server's order (resourceVersion)."""
    events = []
    for path, n in ((GSLBS, 2), (INGRESSES, count - 2)):
        params = {"watch": "true", "resourceVersion": since}
        async with http.get(path, params=params) as resp:
            events += await read_events(resp, n)
    events.sort(key=lambda e: int(e["object"]["metadata"]["resourceVersion"]))
    return [(e["type"], e["object"]["metadata"]["name"], e["object"]["metadata"]) for e in events]


@pytest.mark.parametrize("policy", ["Orphan", "Foreground"])
async def test_orphan_and_foreground_deletions_go_through_the_collectors_finalizer(
    http: aiohttp.ClientSession, policy: str
) -> None:
    """As the API server: the owner is marked deleting with the collector's finalizer first, then its
    dependents are orphaned (their reference removed) or deleted, and only then is the owner gone."""
    _, owner = await call(http, "POST", GSLBS, gslb("owner"))
    ref = {"apiVersion": "k8gb.io/v1beta1", "kind": "Gslb", "name": "owner", "uid": owner["metadata"]["uid"]}
    _, dep = await call(http, "POST", INGRESSES, {"metadata": {"name": "dep", "ownerReferences": [ref]}})
    options = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": policy}
    status, answer = await call(http, "DELETE", f"{GSLBS}/owner", options)
    finalizer = {"Orphan": "orphan", "Foreground": "foregroundDeletion"}[policy]
    assert status == 200 and answer["metadata"]["finalizers"] == [finalizer]
    assert answer["metadata"]["deletionTimestamp"]
    (marked, dependent, gone) = await deletion_events(http, dep["metadata"]["resourceVersion"], 3)
    assert marked[:2] == ("MODIFIED", "owner") and marked[2]["finalizers"] == [finalizer]
    if policy == "Orphan":
        assert dependent[:2] == ("MODIFIED", "dep") and "ownerReferences" not in dependent[2]
        assert (await call(http, "GET", f"{INGRESSES}/dep"))[0] == 200
    else:
        assert dependent[:2] == ("DELETED", "dep")
        assert (await call(http, "GET", f"{INGRESSES}/dep"))[0] == 404
    assert gone[:2] == ("DELETED", "owner") and "finalizers" not in gone[2]


async def test_an_orphan_deletion_keeps_the_dependents_of_an_owner_with_finalizers(
    http: aiohttp.ClientSession,
) -> None:
    """The dependents are orphaned at once; the owner waits for its own finalizers, then goes alone."""
    _, owner = await call(http, "POST", GSLBS, gslb("owner", finalizers=["test/hold"]))
    ref = {"apiVersion": "k8gb.io/v1beta1", "kind": "Gslb", "name": "owner", "uid": owner["metadata"]["uid"]}
    await call(http, "POST", INGRESSES, {"metadata": {"name": "dep", "ownerReferences": [ref]}})
    await call(http, "DELETE", f"{GSLBS}/owner", {"propagationPolicy": "Orphan"})
    _, deleting = await call(http, "GET", f"{GSLBS}/owner")
    assert deleting["metadata"]["finalizers"] == ["test/hold"] and deleting["metadata"]["deletionTimestamp"]
    assert "ownerReferences" not in (await call(http, "GET", f"{INGRESSES}/dep"))[1]["metadata"]
    deleting["metadata"]["finalizers"] = []
    await call(http, "PUT", f"{GSLBS}/owner", deleting)
    assert (await call(http, "GET", f"{GSLBS}/owner"))[0] == 404
    assert (await call(http, "GET", f"{INGRESSES}/dep"))[0] == 200


async def test_a_paused_collector_leaves_its_work_for_collect_garbage(
    kube_api: KubeApi, http: aiohttp.ClientSession
) -> None:
    """What a controller sees while the real collector lags: an Orphan-deleted owner still there with
    its finalizer and its dependents still referencing it; a Background-deleted one gone, its
    dependents not yet."""
    kube_api.gc_paused = True
    for name in ("orphaning", "background"):
        _, owner = await call(http, "POST", GSLBS, gslb(name))
        ref = {"apiVersion": "k8gb.io/v1beta1", "kind": "Gslb", "name": name, "uid": owner["metadata"]["uid"]}
        await call(http, "POST", INGRESSES, {"metadata": {"name": name, "ownerReferences": [ref]}})
    await call(http, "DELETE", f"{GSLBS}/orphaning", {"propagationPolicy": "Orphan"})
    await call(http, "DELETE", f"{GSLBS}/background", {"propagationPolicy": "Background"})
    _, orphaning = await call(http, "GET", f"{GSLBS}/orphaning")
    assert orphaning["metadata"]["finalizers"] == ["orphan"]
    assert (await call(http, "GET", f"{GSLBS}/background"))[0] == 404
    for name in ("orphaning", "background"):
        assert (await call(http, "GET", f"{INGRESSES}/{name}"))[1]["metadata"]["ownerReferences"]
    kube_api.collect_garbage()
    assert (await call(http, "GET", f"{GSLBS}/orphaning"))[0] == 404
    assert "ownerReferences" not in (await call(http, "GET", f"{INGRESSES}/orphaning"))[1]["metadata"]
    assert (await call(http, "GET", f"{INGRESSES}/background"))[0] == 404


async def test_a_test_reaction_wins_over_the_emulation(
    kube_api: KubeApi, http: aiohttp.ClientSession
) -> None:
    await call(http, "GET", GSLBS)
    kube_api.next_request(kmock.resource("k8gb.io", "v1beta1", "gslbs")) << 503
    assert (await call(http, "GET", GSLBS))[0] == 503
    assert (await call(http, "GET", GSLBS))[0] == 200


async def test_server_side_table_uses_printer_columns(http: aiohttp.ClientSession) -> None:
    await call(http, "POST", GSLBS, gslb("a", strategy="failover"))
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    status, table = await call(http, "GET", GSLBS, headers={"Accept": accept})
    assert status == 200 and table["kind"] == "Table"
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "strategy", "geoTag", "hosts"]
    assert table["rows"][0]["cells"] == ["a", "failover", None, None]


async def test_schema_defaults_are_applied_on_create_and_update(http: aiohttp.ClientSession) -> None:
    """Adaptation 12, with the chart's CRD: dnsTtlSeconds defaults to 30; an explicit value is kept."""
    _, created = await call(http, "POST", GSLBS, gslb("a"))
    assert created["spec"]["strategy"] == {"type": "roundRobin", "dnsTtlSeconds": 30}
    explicit = gslb("b")
    explicit["spec"]["strategy"]["dnsTtlSeconds"] = 0
    _, kept = await call(http, "POST", GSLBS, explicit)
    assert kept["spec"]["strategy"]["dnsTtlSeconds"] == 0
    without = json.loads(json.dumps(created))
    del without["spec"]["strategy"]["dnsTtlSeconds"]
    status, updated = await call(http, "PUT", f"{GSLBS}/a", without)
    assert status == 200 and updated["spec"]["strategy"]["dnsTtlSeconds"] == 30
    assert updated["metadata"]["generation"] == 1  # defaulted back to what it was: no spec change


async def test_stored_versions_alias_nothing_a_client_or_a_test_holds(
    kube_api: KubeApi, http: aiohttp.ClientSession
) -> None:
    """Writes share stored objects instead of copying them: what goes in and comes out must not alias
    them, and an older version kept for watch replay stays as it was written."""
    body = gslb("a", namespace="default", labels={"v": "1"})
    created = kube_api.create_object("k8gb.io", "v1beta1", "gslbs", body)
    body["spec"]["strategy"]["type"] = "from-the-body"
    created["spec"]["strategy"]["type"] = "from-the-reply"
    fetched = kube_api.get_object("k8gb.io", "gslbs", "default", "a")
    assert fetched is not None and fetched["spec"]["strategy"]["type"] == "roundRobin"
    fetched["metadata"]["labels"]["v"] = "from-get"
    kube_api.objects("k8gb.io", "gslbs")[0]["spec"]["strategy"]["type"] = "from-objects"

    patch = {"metadata": {"labels": {"v": "2"}}, "status": {"geoTag": "eu"}}
    headers = {"Content-Type": "application/merge-patch+json"}
    status, patched = await call(http, "PATCH", f"{GSLBS}/a", patch, headers=headers)
    assert status == 200 and "status" not in patched
    assert (await call(http, "PUT", f"{GSLBS}/a/status", {**patched, **patch}))[0] == 200
    list(kube_api)[-1].data["status"]["geoTag"] = "from-the-request-log"
    since = int(created["metadata"]["resourceVersion"]) - 1
    async with http.get(GSLBS, params={"watch": "true", "resourceVersion": str(since)}) as resp:
        events = await read_events(resp, 3)
    seen = [(e["type"], e["object"]["metadata"]["labels"]["v"], e["object"].get("status")) for e in events]
    assert seen == [("ADDED", "1", None), ("MODIFIED", "2", None), ("MODIFIED", "2", {"geoTag": "eu"})]
    assert {e["object"]["spec"]["strategy"]["type"] for e in events} == {"roundRobin"}
    _, now = await call(http, "GET", f"{GSLBS}/a")
    assert now["status"] == {"geoTag": "eu"} and now["metadata"]["labels"] == {"v": "2"}


async def test_a_burst_of_changes_reaches_a_watch_in_order_and_before_its_end(
    kube_api: KubeApi, http: aiohttp.ClientSession
) -> None:
    """Lines queued while the stream was busy go out together: none lost, reordered, or after the end."""
    params = {"watch": "true", "resourceVersion": str(kube_api.resource_version)}
    async with http.get(GSLBS, params=params) as resp:
        while not kube_api.watchers_of("gslbs"):
            await asyncio.sleep(0.01)
        for i in range(50):
            kube_api.create_object("k8gb.io", "v1beta1", "gslbs", gslb(f"g{i}", namespace="default"))
        kube_api.drop_watches()
        events = await read_events(resp, 51)
    assert [e["object"]["metadata"]["name"] for e in events] == [f"g{i}" for i in range(50)]


async def test_a_watch_from_before_the_kept_history_expires(
    kube_api: KubeApi, http: aiohttp.ClientSession
) -> None:
    kube_api.history_limit = 2
    versions = []
    for name in "abcdef":
        versions.append((await call(http, "POST", GSLBS, gslb(name)))[1]["metadata"]["resourceVersion"])
    async with http.get(GSLBS, params={"watch": "true", "resourceVersion": versions[0]}) as resp:
        (expired,) = await read_events(resp, 2)
    assert expired["type"] == "ERROR" and expired["object"]["code"] == 410
    async with http.get(GSLBS, params={"watch": "true", "resourceVersion": versions[3]}) as resp:
        replayed = await read_events(resp, 2)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in replayed] == [
        ("ADDED", "e"),
        ("ADDED", "f"),
    ]
