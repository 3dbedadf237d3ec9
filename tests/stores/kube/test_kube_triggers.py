"""The watch mappers: which changes of owned objects and EndpointSlices reconcile which Gslb."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from app.domain.gslb import Gslb, GslbStatus, NamespacedName, Server
from app.stores.base import ObjectKey
from app.stores.kube.client import KubeClient
from app.stores.kube.dnsendpoint import DnsEndpointSink
from app.stores.kube.health import EndpointSliceHealth
from app.stores.kube.ownwrites import OwnWrites
from app.stores.kube.servers import KubeServerSource
from app.stores.kube.store import KubeGslbStore
from app.stores.kube.triggers import GslbTriggers
from tests.support.gslb_factory import gslb_body
from tests.support.kmockapi import KubeApi

NS = "test-gslb"


def has_servers(obj: dict[str, Any]) -> bool:
    """The store's informer holds this Gslb with `status.servers` (what the Service mapping reads)."""
    return bool((obj.get("status") or {}).get("servers"))


class Keys:
    def __init__(self) -> None:
        self.seen: list[tuple[ObjectKey, str]] = []

    def __call__(self, key: ObjectKey, reason: str) -> None:
        self.seen.append((key, reason))

    async def until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.01)


@pytest.fixture
def own_writes() -> OwnWrites:
    return OwnWrites()


@pytest.fixture
async def wired(
    kube: KubeClient, kube_store: KubeGslbStore, own_writes: OwnWrites
) -> AsyncIterator[tuple[GslbTriggers, Keys]]:
    keys = Keys()
    health = EndpointSliceHealth(kube)
    triggers = GslbTriggers(kube, store=kube_store, on_key=keys, health=health, own_writes=own_writes)
    await health.start()
    await triggers.start()
    try:
        yield triggers, keys
    finally:
        await triggers.stop()
        await health.stop()


async def marker(kube_api: KubeApi, keys: Keys, kube_store: KubeGslbStore, name: str) -> None:
    """A change every mapper reports: once it is seen, every earlier event has been handled."""
    gslb = await kube_store.create(Gslb.model_validate(gslb_body(name, namespace=NS)))
    ref = {
        "apiVersion": "k8gb.io/v1beta1",
        "kind": "Gslb",
        "name": name,
        "uid": gslb.metadata.uid,
        "controller": True,
    }
    kube_api.create_object(
        "externaldns.k8s.io",
        "v1alpha1",
        "dnsendpoints",
        {"metadata": {"name": name, "namespace": NS, "ownerReferences": [ref]}, "spec": {}},
    )
    await keys.until(lambda: any(k.name == name for k, _ in keys.seen))


async def test_owned_objects_reconcile_their_gslb_except_after_our_own_writes(
    kube: KubeClient, kube_api: KubeApi, kube_store: KubeGslbStore, wired: Any, own_writes: OwnWrites
) -> None:
    _, keys = wired
    gslb = await kube_store.create(Gslb.model_validate(gslb_body("app", namespace=NS)))
    key = ObjectKey.of(gslb)
    await KubeServerSource(kube, own_writes=own_writes).servers(gslb)  # creates the embedded Ingress
    await DnsEndpointSink(kube, own_writes=own_writes).publish(gslb, [])
    await marker(kube_api, keys, kube_store, "marker-1")
    assert [k for k, _ in keys.seen if k == key] == []

    ingress = kube_api.get_object("networking.k8s.io", "ingresses", NS, "app")
    assert ingress is not None
    ingress["status"] = {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}}
    kube_api.update_object("networking.k8s.io", "ingresses", ingress, status=True)  # an ingress controller
    await keys.until(lambda: (key, "owned-ingress") in keys.seen)

    dnsendpoint = kube_api.get_object("externaldns.k8s.io", "dnsendpoints", NS, "app")
    assert dnsendpoint is not None
    dnsendpoint["spec"] = {"endpoints": [{"dnsName": "x", "targets": ["1.2.3.4"], "recordType": "A"}]}
    kube_api.update_object("externaldns.k8s.io", "dnsendpoints", dnsendpoint)  # a user's hand edit
    await keys.until(lambda: (key, "owned-dnsendpoint") in keys.seen)
    keys.seen.clear()
    kube_api.delete_object("externaldns.k8s.io", "dnsendpoints", NS, "app")
    await keys.until(lambda: (key, "owned-dnsendpoint") in keys.seen)


async def test_endpointslice_changes_reconcile_the_gslbs_their_service_backs(
    kube_api: KubeApi, kube_store: KubeGslbStore, wired: Any
) -> None:
    _, keys = wired
    backed, other = [
        await kube_store.create(Gslb.model_validate(gslb_body(name, namespace=NS)))
        for name in ("backed", "other")
    ]
    for gslb, service in ((backed, "web"), (other, "api")):
        servers = [
            Server(
                host=f"{gslb.name}.cloud.example.com", services=[NamespacedName(namespace=NS, name=service)]
            )
        ]
        await kube_store.update_status(ObjectKey.of(gslb), GslbStatus(geo_tag="eu", servers=servers))
    await keys.until(lambda: all(has_servers(g) for g in kube_store.informers["k8gb.io"].items()))

    kube_api.create_object("", "v1", "services", {"metadata": {"name": "web", "namespace": NS}, "spec": {}})
    await keys.until(lambda: (ObjectKey.of(backed), "endpointslice") in keys.seen)
    slice_ = {
        "metadata": {"name": "web-abc", "namespace": NS, "labels": {"kubernetes.io/service-name": "web"}},
        "endpoints": [{"addresses": ["10.1.1.1"], "conditions": {"ready": True}}],
    }
    keys.seen.clear()
    kube_api.create_object("discovery.k8s.io", "v1", "endpointslices", slice_)
    await keys.until(lambda: (ObjectKey.of(backed), "endpointslice") in keys.seen)
    await marker(kube_api, keys, kube_store, "marker-2")
    assert [k for k, _ in keys.seen if k == ObjectKey.of(other)] == []


async def test_gslbs_listed_before_the_triggers_start_are_mapped_to_their_services(
    kube_api: KubeApi, kube: KubeClient, kube_store: KubeGslbStore
) -> None:
    """A restarted controller: its Gslbs (with status.servers) are in the store's cache before the
    mappers exist, and a change of a Service they name must still reconcile them."""
    gslb = await kube_store.create(Gslb.model_validate(gslb_body("early", namespace=NS)))
    servers = [Server(host="early.cloud.example.com", services=[NamespacedName(namespace=NS, name="web")])]
    await kube_store.update_status(ObjectKey.of(gslb), GslbStatus(geo_tag="eu", servers=servers))
    async with asyncio.timeout(5):
        while not any(has_servers(g) for g in kube_store.informers["k8gb.io"].items()):
            await asyncio.sleep(0.01)
    keys = Keys()
    health = EndpointSliceHealth(kube)
    triggers = GslbTriggers(kube, store=kube_store, on_key=keys, health=health)
    await health.start()
    await triggers.start()
    try:
        kube_api.create_object(
            "", "v1", "services", {"metadata": {"name": "web", "namespace": NS}, "spec": {}}
        )
        await keys.until(lambda: (ObjectKey.of(gslb), "endpointslice") in keys.seen)
    finally:
        await triggers.stop()
        await health.stop()
