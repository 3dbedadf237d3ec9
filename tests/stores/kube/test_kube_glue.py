"""The edge delegation's glue in kubernetes mode: read from the cluster (the DNS Service, k8gb's CoreDNS
Service, an ip-source Ingress) after DNS_EXPOSED_IPS and CLUSTER_EXPOSED_IPS, waited for while unknown, and
followed when it changes. The delegation loop runs as `gslb serve` builds it, on the kube parts' informers,
against the emulated API server and an in-memory edge; it re-checks only when kicked (every period and
backoff is 300 s), so each change the edge shows came from the cluster's watch."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from app.controller.delegation import DelegationLoop, DelegationState
from app.controller.metrics import ControllerMetrics
from app.providers.inmemory import InMemoryProvider
from app.stores.kube.client import KubeClient
from app.stores.kube.mode import KubeParts, build_kube_store
from tests.stores.kube.conftest import kube_settings
from tests.support.dns_responder import Responder, serve
from tests.support.kmockapi import KubeApi
from tests.support.ports import free_port

NS = "k8gb"
DNS_SERVICE = "gslb-pygslb-dns"
ZONE = "cloud.example.com"
GLUE = "gslb-ns-eu-cloud.example.com"
NEVER = 300.0  # no round but the first comes from a timer


@pytest.fixture
async def edge_dns() -> AsyncIterator[tuple[str, int]]:
    """An edge DNS server that knows the load balancer's hostname."""
    port = free_port()
    responder = await serve(
        Responder({"lb.example.net": ["198.51.100.8", "198.51.100.7"]}), "127.0.0.1", port
    )
    try:
        yield "127.0.0.1", port
    finally:
        await responder.close()


class Edge:
    def __init__(self, loop: DelegationLoop, provider: InMemoryProvider) -> None:
        self.loop = loop
        self.provider = provider

    async def glue(self) -> list[str] | None:
        for record in await self.provider.records("example.com"):
            if record.record_type == "A" and record.dns_name == GLUE:
                return sorted(record.targets)
        return None

    async def ns(self) -> list[str] | None:
        for record in await self.provider.records("example.com"):
            if record.record_type == "NS" and record.dns_name == ZONE:
                return list(record.targets)
        return None

    @property
    def state(self) -> DelegationState | None:
        return self.loop.state.get(ZONE)

    async def until_glue(self, expected: list[str] | None, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while (await self.glue()) != expected:
                await asyncio.sleep(0.02)

    async def until_state(
        self, check: Callable[[DelegationState], bool], timeout: float = 5.0
    ) -> DelegationState:
        async with asyncio.timeout(timeout):
            while (state := self.state) is None or not check(state):
                await asyncio.sleep(0.02)
        return state


@asynccontextmanager
async def delegating(kube: KubeClient, **settings: Any) -> AsyncIterator[Edge]:
    """The kube parts and the delegation loop, wired as the runtime wires them."""
    config = kube_settings(edge_dns_type="rfc2136", rfc2136_host="127.0.0.1:53", **settings)  # never asked
    store = await build_kube_store(config, kube)
    parts = KubeParts.of(store, config)
    provider = InMemoryProvider()
    loop = DelegationLoop(
        provider=provider,
        zones=config.zones,
        own_tag=config.cluster_geo_tag,
        peer_tags=config.peer_tags,
        glue=parts.glue,
        glue_prefix=config.gluea_prefix,
        ns_ttl=config.ns_record_ttl,
        metrics=ControllerMetrics(CollectorRegistry()),
        interval=NEVER,
        base_delay=NEVER,
        max_delay=NEVER,
    )
    parts.glue.on_change(loop.kick)
    await parts.health.start()
    await parts.glue.start()
    task = asyncio.create_task(loop.run())
    try:
        yield Edge(loop, provider)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await parts.glue.stop()
        await parts.health.stop()


def service(
    api: KubeApi,
    name: str = DNS_SERVICE,
    *,
    type_: str = "LoadBalancer",
    namespace: str = NS,
    labels: dict[str, str] | None = None,
    cluster_ips: list[str] | None = None,
) -> None:
    spec: dict[str, Any] = {"type": type_, "ports": [{"name": "dns-udp", "port": 53, "protocol": "UDP"}]}
    if cluster_ips:
        spec["clusterIP"], spec["clusterIPs"] = cluster_ips[0], cluster_ips
    metadata = {"name": name, "namespace": namespace, "labels": labels or {}}
    api.create_object("", "v1", "services", {"metadata": metadata, "spec": spec})


def balance(
    api: KubeApi, name: str, *entries: dict[str, str], namespace: str = NS, plural: str = "services"
) -> None:
    """What a load balancer controller writes: the Service's (or Ingress's) status addresses."""
    group = "" if plural == "services" else "networking.k8s.io"
    api.set_status(group, plural, namespace, name, {"loadBalancer": {"ingress": list(entries)}})


def ingress(api: KubeApi, namespace: str, name: str, *, ip_source: bool) -> None:
    labels = {"k8gb.io/ip-source": "true"} if ip_source else {}
    api.create_object(
        "networking.k8s.io",
        "v1",
        "ingresses",
        {"metadata": {"name": name, "namespace": namespace, "labels": labels}, "spec": {"rules": []}},
    )


async def test_the_delegation_waits_for_the_dns_service_address_and_follows_it(
    kube_api: KubeApi, kube: KubeClient
) -> None:
    service(kube_api)  # a LoadBalancer the cloud has not provisioned yet
    async with delegating(kube, dns_service_name=DNS_SERVICE) as edge:
        state = await edge.until_state(lambda s: not s.ok)
        assert state.message == (
            "waiting for this cluster's DNS address: Service k8gb/gslb-pygslb-dns has no load balancer "
            "address yet"
        )
        assert state.reason == "WaitingForDNSAddress"
        assert await edge.glue() is None and await edge.ns() is None  # nothing half-written at the edge

        balance(kube_api, DNS_SERVICE, {"ip": "192.0.2.53"})
        await edge.until_glue(["192.0.2.53"])
        assert await edge.ns() == [GLUE]
        assert (await edge.until_state(lambda s: s.ok)).message == "delegated through inmemory"

        balance(kube_api, DNS_SERVICE, {"ip": "192.0.2.54"}, {"ip": "2001:db8::54"})  # a new address
        await edge.until_glue(["192.0.2.54"])  # IPv4 only, as k8gb

        kube_api.delete_object("", "services", NS, DNS_SERVICE)
        state = await edge.until_state(lambda s: not s.ok)
        assert state.message == (
            "waiting for this cluster's DNS address: Service k8gb/gslb-pygslb-dns (DNS_SERVICE_NAME) "
            "not found"
        )
        assert await edge.glue() == ["192.0.2.54"]  # the edge keeps the last address, as k8gb does


async def test_a_service_of_another_namespace_or_name_is_not_ours(
    kube_api: KubeApi, kube: KubeClient
) -> None:
    service(kube_api, namespace="default")
    balance(kube_api, DNS_SERVICE, {"ip": "192.0.2.1"}, namespace="default")
    service(kube_api, "other")
    balance(kube_api, "other", {"ip": "192.0.2.2"})
    async with delegating(kube, dns_service_name=DNS_SERVICE) as edge:
        state = await edge.until_state(lambda s: not s.ok)
        assert state.message.endswith("Service k8gb/gslb-pygslb-dns (DNS_SERVICE_NAME) not found")
        service(kube_api)
        balance(kube_api, DNS_SERVICE, {"ip": "192.0.2.3"})
        await edge.until_glue(["192.0.2.3"])


async def test_a_clusterip_service_gives_its_ipv4_cluster_ip(kube_api: KubeApi, kube: KubeClient) -> None:
    service(kube_api, type_="ClusterIP", cluster_ips=["10.96.0.53", "fd00::53"])
    async with delegating(kube, dns_service_name=DNS_SERVICE) as edge:
        await edge.until_glue(["10.96.0.53"])


async def test_a_nodeport_service_is_an_error_naming_the_way_out(kube_api: KubeApi, kube: KubeClient) -> None:
    service(kube_api, type_="NodePort", cluster_ips=["10.96.0.53"])
    async with delegating(kube, dns_service_name=DNS_SERVICE) as edge:
        state = await edge.until_state(lambda s: not s.ok)
        assert state.reason == "DNSAddressError"
        assert state.message == (
            "no DNS address for this cluster: Service k8gb/gslb-pygslb-dns is of type NodePort, which gets "
            "no load balancer address: make it a LoadBalancer, or set DNS_EXPOSED_IPS"
        )


async def test_exposed_ips_from_settings_win_over_the_service(kube_api: KubeApi, kube: KubeClient) -> None:
    service(kube_api)
    balance(kube_api, DNS_SERVICE, {"ip": "192.0.2.53"})
    async with delegating(kube, dns_service_name=DNS_SERVICE, cluster_exposed_ips="10.0.0.7") as edge:
        await edge.until_glue(["10.0.0.7"])
    settings = {
        "dns_service_name": DNS_SERVICE,
        "cluster_exposed_ips": "10.0.0.7",
        "dns_exposed_ips": "10.0.0.9",
    }
    async with delegating(kube, **settings) as edge:
        await edge.until_glue(["10.0.0.9"])


async def test_a_load_balancer_hostname_is_resolved_through_edge_dns(
    kube_api: KubeApi, kube: KubeClient, edge_dns: tuple[str, int]
) -> None:
    service(kube_api)
    balance(kube_api, DNS_SERVICE, {"hostname": "lb.example.net"})
    host, port = edge_dns
    async with delegating(kube, dns_service_name=DNS_SERVICE, edge_dns_servers=f"{host}:{port}") as edge:
        await edge.until_glue(["198.51.100.7", "198.51.100.8"])


async def test_the_first_ip_source_ingress_gives_the_glue(kube_api: KubeApi, kube: KubeClient) -> None:
    ingress(kube_api, "apps", "web", ip_source=False)  # not labelled: never the source
    balance(kube_api, "web", {"ip": "192.0.2.9"}, namespace="apps", plural="ingresses")
    async with delegating(kube) as edge:
        state = await edge.until_state(lambda s: not s.ok)
        assert state.message == (
            "waiting for this cluster's DNS address: no Ingress labelled k8gb.io/ip-source=true (or set "
            "DNS_SERVICE_NAME, COREDNS_SERVICE_TYPE=LoadBalancer or DNS_EXPOSED_IPS)"
        )
        ingress(kube_api, "zz", "source", ip_source=True)
        balance(kube_api, "source", {"ip": "192.0.2.2"}, namespace="zz", plural="ingresses")
        await edge.until_glue(["192.0.2.2"])

        ingress(kube_api, "aa", "source", ip_source=True)  # first in namespace/name order, no address yet
        state = await edge.until_state(lambda s: not s.ok)
        assert state.message.endswith(
            "Ingress aa/source (k8gb.io/ip-source=true) has no load balancer address yet"
        )
        balance(kube_api, "source", {"ip": "192.0.2.1"}, namespace="aa", plural="ingresses")
        await edge.until_glue(["192.0.2.1"])

        kube_api.delete_object("networking.k8s.io", "ingresses", "aa", "source")
        await edge.until_glue(["192.0.2.2"])


async def test_coredns_service_type_loadbalancer_reads_k8gbs_coredns_service(
    kube_api: KubeApi, kube: KubeClient
) -> None:
    coredns = {"app.kubernetes.io/name": "coredns"}
    service(kube_api, "k8gb-coredns-metrics", labels={**coredns, "app.kubernetes.io/component": "metrics"})
    balance(kube_api, "k8gb-coredns-metrics", {"ip": "192.0.2.99"})
    service(kube_api, "elsewhere", namespace="kube-system", labels=coredns)
    async with delegating(kube, coredns_service_type="LoadBalancer") as edge:
        state = await edge.until_state(lambda s: not s.ok)
        assert state.reason == "DNSAddressError"
        assert state.message == (
            "no DNS address for this cluster: COREDNS_SERVICE_TYPE=LoadBalancer: exactly 1 Service labelled "
            "app.kubernetes.io/name=coredns (and not app.kubernetes.io/component=metrics) expected in k8gb, "
            "found 0"
        )

        service(kube_api, "k8gb-coredns", labels=coredns)
        balance(kube_api, "k8gb-coredns", {"ip": "192.0.2.53"})
        await edge.until_glue(["192.0.2.53"])

        service(kube_api, "k8gb-coredns-2", labels=coredns)
        state = await edge.until_state(lambda s: not s.ok)
        assert state.message.endswith("found 2: k8gb/k8gb-coredns, k8gb/k8gb-coredns-2")
        assert await edge.glue() == ["192.0.2.53"]

        kube_api.delete_object("", "services", NS, "k8gb-coredns")  # one again: the glue follows it
        balance(kube_api, "k8gb-coredns-2", {"ip": "192.0.2.54"})
        await edge.until_glue(["192.0.2.54"])
