"""The application DNSEndpoint against a fixture of what k8gb writes for the same Gslb and facts.

The fixture (fixtures/k8gb_dnsendpoint_weighted.json) follows k8gb's builder and Go's field order;
Go's encoder also emits `creationTimestamp: null` and `status: {}`, which carry nothing and are left
out. k8gb orders targets of different geo tags by Go map iteration (random); ours are local first.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kmock
import pytest

from app.domain.endpoint import Endpoint
from app.domain.gslb import LEGACY_GROUP, Gslb, HealthStatus
from app.domain.records import HostFacts, desired_endpoints
from app.stores.kube.client import KubeClient
from app.stores.kube.dnsendpoint import DnsEndpointSink
from app.stores.kube.store import KubeGslbStore
from tests.support.gslb_factory import make_gslb
from tests.support.kmockapi import KubeApi

NS = "test-gslb"
HOST = "weighted.cloud.example.com"
FIXTURE = Path(__file__).parent / "fixtures" / "k8gb_dnsendpoint_weighted.json"
SERVER_FIELDS = ("uid", "resourceVersion", "generation", "creationTimestamp")


def ordered(value: Any) -> Any:
    """Dicts as lists of pairs, recursively: equality then also checks key order."""
    if isinstance(value, dict):
        return [(k, ordered(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [ordered(v) for v in value]
    return value


def k8gb_writes(gslb: Gslb) -> dict[str, Any]:
    text = FIXTURE.read_text().replace("<gslb-uid>", gslb.metadata.uid or "")
    return json.loads(text)


def weighted_endpoints(gslb: Gslb) -> list[Endpoint]:
    facts = [HostFacts(HOST, HealthStatus.HEALTHY, {"us": ["172.16.0.1"]})]
    return desired_endpoints(gslb, "eu", ["10.0.0.1", "10.0.0.2"], facts)


@pytest.fixture
async def weighted(kube_store: KubeGslbStore) -> Gslb:
    return await kube_store.create(
        make_gslb("weighted", host=HOST, weight={"eu": 80, "us": 20}, dnsTtlSeconds=30)
    )


def stored(kube_api: KubeApi, name: str = "weighted") -> dict[str, Any]:
    obj = kube_api.get_object("externaldns.k8s.io", "dnsendpoints", NS, name)
    assert obj is not None
    return obj


async def test_the_dnsendpoint_is_what_k8gb_writes(
    kube: KubeClient, kube_api: KubeApi, weighted: Gslb
) -> None:
    sink = DnsEndpointSink(kube)
    endpoints = weighted_endpoints(weighted)
    published = await sink.publish(weighted, endpoints)
    assert published == endpoints

    expected = k8gb_writes(weighted)
    obj = stored(kube_api)
    for server_field in SERVER_FIELDS:
        obj["metadata"].pop(server_field)
    # What the API server keeps for a custom resource (keys sorted, as Go's unstructured encoder has them).
    assert json.dumps(obj, sort_keys=True) == json.dumps(expected, sort_keys=True)

    (post,) = [
        r
        for r in kube_api
        if r.method == kmock.method.POST and r.resource and r.resource.plural == "dnsendpoints"
    ]
    assert ordered(json.loads(post.text)) == ordered(expected)  # same fields, same order as k8gb's request


async def test_an_existing_dnsendpoint_is_overwritten_like_k8gb(
    kube: KubeClient, kube_api: KubeApi, weighted: Gslb
) -> None:
    sink = DnsEndpointSink(kube)
    await sink.publish(weighted, weighted_endpoints(weighted))
    tampered = stored(kube_api)
    tampered["metadata"]["labels"]["team"] = "someone"
    tampered["metadata"]["annotations"] = {"note": "hand edit"}
    tampered["spec"]["endpoints"] = []
    kube_api.update_object("externaldns.k8s.io", "dnsendpoints", tampered)

    published = await sink.publish(weighted, weighted_endpoints(weighted))
    restored = stored(kube_api)
    expected = k8gb_writes(weighted)
    assert restored["metadata"]["labels"] == expected["metadata"]["labels"]
    assert restored["metadata"]["annotations"] == expected["metadata"]["annotations"]
    assert restored["spec"] == expected["spec"] and published == weighted_endpoints(weighted)

    version = restored["metadata"]["resourceVersion"]
    await sink.publish(weighted, weighted_endpoints(weighted))
    assert stored(kube_api)["metadata"]["resourceVersion"] == version  # nothing changed, nothing written

    assert await sink.publish(weighted, []) == []
    assert stored(kube_api)["spec"] == {}  # endpoints omitted when empty, as Go's omitempty does


async def test_a_dnsendpoint_in_another_order_is_not_rewritten(
    kube: KubeClient, kube_api: KubeApi, weighted: Gslb
) -> None:
    """k8gb orders the endpoints as Go iterates a map (at random): taking one over is no reason to write."""
    sink = DnsEndpointSink(kube)
    await sink.publish(weighted, weighted_endpoints(weighted))
    reordered = stored(kube_api)
    reordered["spec"]["endpoints"].reverse()
    kube_api.update_object("externaldns.k8s.io", "dnsendpoints", reordered)
    version = stored(kube_api)["metadata"]["resourceVersion"]

    published = await sink.publish(weighted, weighted_endpoints(weighted))  # read back in the object's order
    assert sorted(published, key=repr) == sorted(weighted_endpoints(weighted), key=repr)
    assert stored(kube_api)["metadata"]["resourceVersion"] == version


async def test_withdraw_deletes_only_what_the_deleted_gslb_controls(
    kube: KubeClient, kube_api: KubeApi, kube_store: KubeGslbStore, weighted: Gslb
) -> None:
    """Not the twin's in the other API group, nor one a delete orphans (no uid)."""
    sink = DnsEndpointSink(kube)
    legacy = await kube_store.create(make_gslb("twin", group=LEGACY_GROUP, host=HOST))
    twin = await kube_store.create(make_gslb("twin", host=HOST))
    await sink.publish(legacy, weighted_endpoints(weighted))
    for group, uid in (("k8gb.io", twin.metadata.uid), (LEGACY_GROUP, None)):
        await sink.withdraw(NS, "twin", group, uid)
        assert kube_api.get_object("externaldns.k8s.io", "dnsendpoints", NS, "twin") is not None
    await sink.withdraw(NS, "twin", LEGACY_GROUP, legacy.metadata.uid)
    assert kube_api.get_object("externaldns.k8s.io", "dnsendpoints", NS, "twin") is None
    await sink.withdraw(NS, "twin", LEGACY_GROUP, legacy.metadata.uid)  # already gone: fine


async def test_withdraw_leaves_a_dnsendpoint_taken_over_since_it_was_read(
    kube: KubeClient, kube_api: KubeApi, weighted: Gslb
) -> None:
    """The delete is conditional on the version read: a Gslb created meanwhile may have adopted it."""
    sink = DnsEndpointSink(kube)
    await sink.publish(weighted, weighted_endpoints(weighted))
    taken = stored(kube_api)
    taken["metadata"]["ownerReferences"][0]["uid"] = "a-new-gslb"
    kube_api.next_request(kmock.method.DELETE) << (
        lambda: kube_api.update_object("externaldns.k8s.io", "dnsendpoints", taken) and None
    )
    await sink.withdraw(NS, "weighted", "k8gb.io", weighted.metadata.uid)
    assert stored(kube_api)["metadata"]["ownerReferences"][0]["uid"] == "a-new-gslb"


async def test_a_gslb_created_again_renews_its_owner_reference(
    kube: KubeClient, kube_api: KubeApi, weighted: Gslb
) -> None:
    """The DNSEndpoint of a Gslb deleted and created again (before the garbage collector ran) points at
    the new uid, not the old one, which would have the collector delete it."""
    sink = DnsEndpointSink(kube)
    await sink.publish(weighted, weighted_endpoints(weighted))
    again = weighted.model_copy(
        update={"metadata": weighted.metadata.model_copy(update={"uid": "0f0f0f0f-new-uid"})}
    )
    await sink.publish(again, weighted_endpoints(again))
    (owner,) = stored(kube_api)["metadata"]["ownerReferences"]
    assert owner["uid"] == "0f0f0f0f-new-uid" and owner["controller"] is True
