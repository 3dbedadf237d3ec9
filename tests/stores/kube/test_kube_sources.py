"""The kubernetes-mode sources against the emulated API server (and BIND9 as edge DNS): hosts and
services from embedded or referenced Ingresses, EndpointSlice health, exposed IPs with k8gb's
precedence."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.domain.gslb import Gslb, NamespacedName, Server
from app.domain.health import ServiceState
from app.stores.base import ObjectKey
from app.stores.kube.client import KubeApiError, KubeClient
from app.stores.kube.events import KubeEvents
from app.stores.kube.exposed import ExposedIpError, KubeExposedIps, resolve_a
from app.stores.kube.health import EndpointSliceHealth
from app.stores.kube.refs import ResolveError
from app.stores.kube.servers import KubeServerSource
from app.stores.kube.store import KubeGslbStore
from tests.support.bind9 import Bind9, require_named, zone_text
from tests.support.gslb_factory import gslb_body
from tests.support.kmockapi import KubeApi, ResourceType

NS = "test-gslb"
HOST = "roundrobin.cloud.example.com"


def ingress(name: str, hosts: dict[str, list[str]], labels: dict[str, str] | None = None) -> dict[str, Any]:
    rules = [
        {
            "host": host,
            "http": {
                "paths": [
                    {
                        "path": "/",
                        "pathType": "Prefix",
                        "backend": {"service": {"name": s, "port": {"number": 80}}},
                    }
                    for s in services
                ]
            },
        }
        for host, services in hosts.items()
    ]
    return {"metadata": {"name": name, "namespace": NS, "labels": labels or {}}, "spec": {"rules": rules}}


def referenced(gslb_name: str, **ref: Any) -> dict[str, Any]:
    body = gslb_body(gslb_name, namespace=NS)
    del body["spec"]["ingress"]
    body["spec"]["resourceRef"] = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", **ref}
    return body


async def stored(kube_store: KubeGslbStore, body: dict[str, Any]) -> Gslb:
    return await kube_store.create(Gslb.model_validate(body))


def warnings(kube_api: KubeApi, reason: str) -> list[str]:
    return [e["message"] for e in kube_api.objects("", "events", NS) if e["reason"] == reason]


@pytest.fixture
def events(kube: KubeClient) -> KubeEvents:
    return KubeEvents(kube)


@pytest.fixture
def servers(kube: KubeClient, events: KubeEvents) -> KubeServerSource:
    return KubeServerSource(kube, events=events)


async def test_embedded_ingress_is_created_owned_and_kept_in_step(
    kube_api: KubeApi, kube_store: KubeGslbStore, servers: KubeServerSource
) -> None:
    body = gslb_body("app", namespace=NS, host=HOST, service="frontend")
    body["spec"]["ingress"]["backend"] = {"service": {"name": "fallback", "port": {"number": 80}}}
    gslb = await stored(kube_store, body)
    assert await servers.servers(gslb) == [
        Server(host=HOST, services=[NamespacedName(namespace=NS, name="frontend")])
    ]
    ing = kube_api.get_object("networking.k8s.io", "ingresses", NS, "app")
    assert ing is not None
    assert ing["metadata"]["labels"] == {"app.k8gb.io/managed-by": "gslb"}
    assert ing["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "k8gb.io/v1beta1",
            "kind": "Gslb",
            "name": "app",
            "uid": gslb.metadata.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert ing["spec"]["defaultBackend"]["service"]["name"] == "fallback" and "backend" not in ing["spec"]
    assert ing["spec"]["ingressClassName"] == "nginx"

    version = ing["metadata"]["resourceVersion"]
    await servers.servers(gslb)
    assert (
        kube_api.get_object("networking.k8s.io", "ingresses", NS, "app")["metadata"]["resourceVersion"]
        == version
    )  # type: ignore[index]

    changed = gslb.model_copy(deep=True)
    assert changed.spec.ingress and changed.spec.ingress.rules
    changed.spec.ingress.rules[0].host = "other.cloud.example.com"
    changed = await kube_store.update(changed)
    assert [s.host for s in await servers.servers(changed)] == ["other.cloud.example.com"]

    await kube_store.delete(ObjectKey.of(changed))
    assert kube_api.get_object("networking.k8s.io", "ingresses", NS, "app") is None  # garbage-collected


async def test_a_gslb_without_ingress_or_reference_is_a_reconcile_error(
    kube_api: KubeApi, kube_store: KubeGslbStore, servers: KubeServerSource
) -> None:
    body = gslb_body("empty", namespace=NS)
    del body["spec"]["ingress"]
    gslb = await stored(kube_store, body)
    with pytest.raises(ResolveError, match="exactly 1 Ingress resource expected but none was found"):
        await servers.servers(gslb)
    assert warnings(kube_api, "ReconcileError") == ["exactly 1 Ingress resource expected but none was found"]


async def test_referenced_ingress_by_name(
    kube_api: KubeApi, kube_store: KubeGslbStore, servers: KubeServerSource
) -> None:
    kube_api.create_object(
        "networking.k8s.io",
        "v1",
        "ingresses",
        ingress("web", {HOST: ["a", "b"], "x.cloud.example.com": ["a"]}),
    )
    gslb = await stored(kube_store, referenced("app", name="web"))
    assert await servers.servers(gslb) == [
        Server(
            host=HOST,
            services=[NamespacedName(namespace=NS, name="a"), NamespacedName(namespace=NS, name="b")],
        ),
        Server(host="x.cloud.example.com", services=[NamespacedName(namespace=NS, name="a")]),
    ]
    missing = await stored(kube_store, referenced("gone", name="nothing-here"))
    with pytest.raises(ResolveError, match="not found"):
        await servers.servers(missing)
    assert warnings(kube_api, "ReconcileError") == [f"referenced Ingress {NS}/nothing-here not found"]


async def test_referenced_ingress_by_selector_needs_exactly_one(
    kube_api: KubeApi, kube_store: KubeGslbStore, servers: KubeServerSource
) -> None:
    kube_api.create_object(
        "networking.k8s.io", "v1", "ingresses", ingress("one", {HOST: ["a"]}, {"app": "web", "v": "1"})
    )
    by_labels = await stored(kube_store, referenced("by-labels", matchLabels={"app": "web"}))
    assert [s.host for s in await servers.servers(by_labels)] == [HOST]

    kube_api.create_object(
        "networking.k8s.io", "v1", "ingresses", ingress("two", {HOST: ["b"]}, {"app": "web", "v": "2"})
    )
    with pytest.raises(ResolveError, match="exactly 1 Ingress resource expected but 2 were found"):
        await servers.servers(by_labels)

    expression = referenced(
        "by-expression", matchExpressions=[{"key": "v", "operator": "In", "values": ["2", "3"]}]
    )
    assert [s.services[0].name for s in await servers.servers(await stored(kube_store, expression))] == ["b"]

    nothing = await stored(kube_store, referenced("no-match", matchLabels={"app": "none"}))
    with pytest.raises(ResolveError, match="but none was found"):
        await servers.servers(nothing)


def lb_service(name: str, *, kind: str = "LoadBalancer", ips: tuple[str, ...] = (), **labels: str) -> Any:
    return {
        "metadata": {"name": name, "namespace": NS, "labels": labels},
        "spec": {"type": kind, "ports": [{"port": 443}]},
        "status": {"loadBalancer": {"ingress": [{"ip": ip} for ip in ips]}},
    }


def service_ref(gslb_name: str, hostname: str | None = HOST, **ref: Any) -> dict[str, Any]:
    body = referenced(gslb_name, **ref)
    body["spec"]["resourceRef"].update(apiVersion="v1", kind="Service")
    if hostname is not None:
        body["metadata"]["annotations"] = {"k8gb.io/hostname": hostname}
    return body


async def test_a_referenced_loadbalancer_service_backs_the_annotated_host(
    kube_api: KubeApi, kube_store: KubeGslbStore, servers: KubeServerSource
) -> None:
    """k8gb's LoadBalancer Service reference: the host from `k8gb.io/hostname`, the Service itself
    behind it, by name or by labels (exactly one)."""
    kube_api.create_object("", "v1", "services", lb_service("frontend-lb", ips=("10.1.2.3",), app="web"))
    by_name = await stored(kube_store, service_ref("by-name", name="frontend-lb"))
    expected = [Server(host=HOST, services=[NamespacedName(namespace=NS, name="frontend-lb")])]
    assert await servers.servers(by_name) == expected
    by_labels = await stored(kube_store, service_ref("by-labels", matchLabels={"app": "web"}))
    assert await servers.servers(by_labels) == expected

    kube_api.create_object("", "v1", "services", lb_service("second-lb", app="web"))
    with pytest.raises(ResolveError, match="^exactly 1 Service resource expected but 2 were found$"):
        await servers.servers(by_labels)


@pytest.mark.parametrize(
    ("hostname", "service", "message"),
    [
        (None, "frontend-lb", "LoadBalancer service GSLB svc requires k8gb.io/hostname annotation"),
        (" ", "frontend-lb", "LoadBalancer service GSLB svc has empty k8gb.io/hostname annotation"),
        (HOST, "internal", "service internal is not of type LoadBalancer"),
        (HOST, "absent", f"referenced Service {NS}/absent not found"),
    ],
)
async def test_a_service_reference_that_cannot_work_says_why(
    kube_api: KubeApi,
    kube_store: KubeGslbStore,
    servers: KubeServerSource,
    hostname: str | None,
    service: str,
    message: str,
) -> None:
    kube_api.create_object("", "v1", "services", lb_service("frontend-lb"))
    kube_api.create_object("", "v1", "services", lb_service("internal", kind="ClusterIP"))
    gslb = await stored(kube_store, service_ref("svc", hostname, name=service))
    with pytest.raises(ResolveError) as caught:
        await servers.servers(gslb)
    assert str(caught.value) == message
    assert warnings(kube_api, "ReconcileError") == [message]


async def test_unsupported_references_are_refused(
    kube_store: KubeGslbStore, servers: KubeServerSource
) -> None:
    body = referenced("route", name="frontend")
    body["spec"]["resourceRef"].update(apiVersion="route.openshift.io/v1", kind="Route")
    with pytest.raises(ResolveError, match="APIVersion:route.openshift.io/v1, Kind:Route not supported"):
        await servers.servers(await stored(kube_store, body))
    body = referenced("no-target")
    with pytest.raises(ResolveError, match="neither name nor label selector specified in ResourceRef"):
        await servers.servers(await stored(kube_store, body))


# --- health ----------------------------------------------------------------------------------------


def endpoint_slice(name: str, service: str, *endpoints: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": NS, "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "endpoints": list(endpoints),
    }


@pytest.fixture
async def health(kube: KubeClient) -> AsyncIterator[EndpointSliceHealth]:
    source = EndpointSliceHealth(kube)
    await source.start()
    try:
        yield source
    finally:
        await source.stop()


async def eventually(check: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


async def test_health_follows_services_and_endpoint_slices(
    kube_api: KubeApi, health: EndpointSliceHealth
) -> None:
    changes: list[tuple[str, str]] = []
    health.on_change(lambda ns, name: changes.append((ns, name)))
    assert health.state(NS, "web") == ServiceState.NOT_FOUND

    kube_api.create_object("", "v1", "services", {"metadata": {"name": "web", "namespace": NS}, "spec": {}})
    await eventually(lambda: health.state(NS, "web") == ServiceState.UNHEALTHY)

    not_ready = {"addresses": ["10.0.0.1"], "conditions": {"ready": False}}
    no_address = {"addresses": [], "conditions": {"ready": True}}
    kube_api.create_object(
        "discovery.k8s.io", "v1", "endpointslices", endpoint_slice("web-1", "web", not_ready, no_address)
    )
    unset = {"addresses": ["10.0.0.2"]}
    kube_api.create_object(
        "discovery.k8s.io", "v1", "endpointslices", endpoint_slice("other", "other", unset)
    )
    await eventually(lambda: health.slices.get(NS, "other") is not None)
    assert health.state(NS, "web") == ServiceState.UNHEALTHY

    kube_api.create_object("discovery.k8s.io", "v1", "endpointslices", endpoint_slice("web-2", "web", unset))
    await eventually(lambda: health.state(NS, "web") == ServiceState.HEALTHY)

    kube_api.delete_object("discovery.k8s.io", "endpointslices", NS, "web-2")
    await eventually(lambda: health.state(NS, "web") == ServiceState.UNHEALTHY)
    ready = {"addresses": ["10.0.0.1"], "conditions": {"ready": True}}
    kube_api.update_object("discovery.k8s.io", "endpointslices", endpoint_slice("web-1", "web", ready))
    await eventually(lambda: health.state(NS, "web") == ServiceState.HEALTHY)

    kube_api.delete_object("", "services", NS, "web")
    await eventually(lambda: health.state(NS, "web") == ServiceState.NOT_FOUND)
    assert changes == [(NS, "web")] * 5  # once per verdict change; the unrelated slice changed nothing here


# --- exposed IPs -------------------------------------------------------------------------------------

EDGE_RECORDS = """
lb      IN A     10.1.0.2
lb      IN A     10.1.0.1
lb      IN AAAA  2001:db8::1
alias   IN CNAME lb
alias2  IN CNAME alias
"""


@pytest.fixture
async def edge() -> AsyncIterator[Bind9]:
    require_named()
    async with Bind9({"edge.example.com": zone_text("edge.example.com", records=EDGE_RECORDS)}) as server:
        yield server


def exposed_source(
    kube: KubeClient, servers: KubeServerSource, events: KubeEvents, edge: Bind9 | None, **kw: Any
) -> KubeExposedIps:
    edge_servers = [(edge.host, edge.port)] if edge is not None else []
    return KubeExposedIps(servers, edge_servers=edge_servers, events=events, timeout=1.0, **kw)


async def test_exposed_ips_follow_k8gbs_precedence(
    kube: KubeClient,
    kube_api: KubeApi,
    kube_store: KubeGslbStore,
    servers: KubeServerSource,
    events: KubeEvents,
    edge: Bind9,
) -> None:
    kube_api.create_object("networking.k8s.io", "v1", "ingresses", ingress("web", {HOST: ["a"]}))
    web = kube_api.get_object("networking.k8s.io", "ingresses", NS, "web")
    assert web is not None
    web["status"] = {
        "loadBalancer": {
            "ingress": [{"ip": "192.0.2.7"}, {"hostname": "alias2.edge.example.com"}, {"ip": "2001:db8::7"}]
        }
    }
    kube_api.update_object("networking.k8s.io", "ingresses", web, status=True)

    plain = await stored(kube_store, referenced("plain", name="web"))
    with_cluster_ips = exposed_source(kube, servers, events, edge, cluster_exposed_ips=["198.51.100.1"])
    source = exposed_source(kube, servers, events, edge)
    assert await source.exposed_ips(plain) == ["192.0.2.7", "10.1.0.1", "10.1.0.2"]
    assert await with_cluster_ips.exposed_ips(plain) == ["198.51.100.1"]

    annotated = referenced("annotated", name="web")
    annotated["metadata"]["annotations"] = {"k8gb.io/exposed-ip-addresses": "203.0.113.1,203.0.113.2"}
    assert await with_cluster_ips.exposed_ips(await stored(kube_store, annotated)) == [
        "203.0.113.1",
        "203.0.113.2",
    ]

    both = referenced("both", name="web")
    both["metadata"]["annotations"] = {
        "k8gb.io/exposed-ip-addresses": "203.0.113.1",
        "k8gb.io/exposed-hostnames": "lb.edge.example.com,alias.edge.example.com",
    }
    assert await with_cluster_ips.exposed_ips(await stored(kube_store, both)) == ["10.1.0.1", "10.1.0.2"]


async def test_exposed_ips_of_a_referenced_service_come_from_its_load_balancer(
    kube: KubeClient,
    kube_api: KubeApi,
    kube_store: KubeGslbStore,
    servers: KubeServerSource,
    events: KubeEvents,
    edge: Bind9,
) -> None:
    kube_api.create_object("", "v1", "services", lb_service("frontend-lb"))
    lb_status = {"loadBalancer": {"ingress": [{"ip": "192.0.2.9"}, {"hostname": "lb.edge.example.com"}]}}
    kube_api.set_status("", "services", NS, "frontend-lb", lb_status)
    gslb = await stored(kube_store, service_ref("svc", name="frontend-lb"))
    assert await exposed_source(kube, servers, events, edge).exposed_ips(gslb) == [
        "192.0.2.9",
        "10.1.0.1",
        "10.1.0.2",
    ]
    # The precedence above the resource stays: CLUSTER_EXPOSED_IPS wins over the Service's status.
    overriding = exposed_source(kube, servers, events, edge, cluster_exposed_ips=["198.51.100.1"])
    assert await overriding.exposed_ips(gslb) == ["198.51.100.1"]


async def test_exposed_ip_failures_are_events(
    kube: KubeClient,
    kube_api: KubeApi,
    kube_store: KubeGslbStore,
    servers: KubeServerSource,
    events: KubeEvents,
    edge: Bind9,
) -> None:
    source = exposed_source(kube, servers, events, edge)
    unknown = referenced("unknown", name="web")
    unknown["metadata"]["annotations"] = {"k8gb.io/exposed-hostnames": "missing.edge.example.com"}
    with pytest.raises(ExposedIpError, match="NXDOMAIN"):
        await source.exposed_ips(await stored(kube_store, unknown))

    bad = referenced("bad", name="web")
    bad["metadata"]["annotations"] = {"k8gb.io/exposed-ip-addresses": "10.0.0.1,not-an-ip"}
    with pytest.raises(ExposedIpError, match="'not-an-ip' is not an IPv4 address"):
        await source.exposed_ips(await stored(kube_store, bad))

    no_edge = exposed_source(kube, servers, events, None)
    with pytest.raises(ExposedIpError, match="no edge DNS servers"):
        await no_edge.exposed_ips(
            await stored(
                kube_store,
                {
                    **unknown,
                    "metadata": {
                        "name": "no-edge",
                        "namespace": NS,
                        "annotations": unknown["metadata"]["annotations"],
                    },
                },
            )
        )
    assert len(warnings(kube_api, "ExposedIPResolutionError")) == 3


# --- Gateway API routes ----------------------------------------------------------------------------

GW = "gateway.networking.k8s.io"


@pytest.fixture(autouse=True)
def gateway_api(kube_api: KubeApi) -> None:
    """The Gateway API's resources, as its CRDs install them in a cluster."""
    for versions, plural, kind in (
        (("v1",), "gateways", "Gateway"),
        (("v1",), "httproutes", "HTTPRoute"),
        (("v1",), "grpcroutes", "GRPCRoute"),
        (("v1alpha2",), "tcproutes", "TCPRoute"),
        (("v1alpha2",), "udproutes", "UDPRoute"),
        (("v1", "v1alpha3", "v1alpha2"), "tlsroutes", "TLSRoute"),
    ):
        kube_api.register(ResourceType(GW, versions, plural, kind, status=True))


def route(kind: str, name: str, hostnames: list[str], parents: list[dict[str, Any]], **labels: str) -> Any:
    return {
        "metadata": {"name": name, "namespace": NS, "labels": labels},
        "spec": {
            "parentRefs": parents,
            "hostnames": hostnames,
            "rules": [
                {"backendRefs": [{"name": "web", "port": 80}]},
                {"backendRefs": [{"name": "api", "namespace": "shared", "port": 80}]},
            ],
        },
    }


def gateway(kube_api: KubeApi, name: str, *addresses: dict[str, str]) -> None:
    """A Gateway whose controller has published `addresses` in its status."""
    listener = {"name": "http", "port": 80, "protocol": "HTTP"}
    body = {
        "metadata": {"name": name, "namespace": NS},
        "spec": {"gatewayClassName": "eg", "listeners": [listener]},
    }
    kube_api.create_object(GW, "v1", "gateways", body)
    kube_api.set_status(GW, "gateways", NS, name, {"addresses": list(addresses)})


def route_ref(gslb_name: str, version: str, kind: str, **ref: Any) -> dict[str, Any]:
    body = referenced(gslb_name, **ref)
    body["spec"]["resourceRef"].update(apiVersion=f"{GW}/{version}", kind=kind)
    return body


async def test_a_referenced_route_gives_its_hostnames_and_its_gateways_addresses(
    kube: KubeClient,
    kube_api: KubeApi,
    kube_store: KubeGslbStore,
    servers: KubeServerSource,
    events: KubeEvents,
    edge: Bind9,
) -> None:
    """k8gb's Gateway API references: every hostname backed by every rule's backendRefs (namespace
    defaulting to the route's), addresses from the one parent Gateway's status."""
    gateway(
        kube_api,
        "eg",
        {"type": "IPAddress", "value": "192.0.2.30"},
        {"value": "192.0.2.31"},
        {"type": "Hostname", "value": "lb.edge.example.com"},
    )
    other_kind = {"kind": "Service", "name": "mesh"}  # not a Gateway: skipped, as k8gb skips it
    kube_api.create_object(
        GW,
        "v1",
        "httproutes",
        route("HTTPRoute", "web", [HOST, "b.cloud.example.com"], [{"name": "eg"}, other_kind]),
    )
    gslb = await stored(kube_store, route_ref("web", "v1", "HTTPRoute", name="web"))
    backends = [NamespacedName(namespace=NS, name="web"), NamespacedName(namespace="shared", name="api")]
    assert await servers.servers(gslb) == [
        Server(host=HOST, services=backends),
        Server(host="b.cloud.example.com", services=backends),
    ]
    assert await exposed_source(kube, servers, events, edge).exposed_ips(gslb) == [
        "192.0.2.30",
        "192.0.2.31",
        "10.1.0.1",
        "10.1.0.2",
    ]
    # the other route kinds and versions k8gb reads, here by labels
    # TLSRoute v1alpha3 by labels; an empty selector is a selector too (it matches everything)
    kube_api.create_object(
        GW, "v1alpha3", "tlsroutes", route("TLSRoute", "tls", [HOST], [{"name": "eg"}], app="t")
    )
    tls = await stored(kube_store, route_ref("by-labels", "v1alpha3", "TLSRoute", matchLabels={"app": "t"}))
    assert await servers.servers(tls) == [Server(host=HOST, services=backends)]
    everything = await stored(kube_store, route_ref("any-tls", "v1alpha3", "TLSRoute", matchLabels={}))
    assert await servers.servers(everything) == [Server(host=HOST, services=backends)]


@pytest.mark.parametrize(("version", "kind"), [("v1alpha2", "TCPRoute"), ("v1alpha2", "UDPRoute")])
async def test_tcp_and_udp_routes_take_their_host_from_the_annotation(
    kube_api: KubeApi, kube_store: KubeGslbStore, servers: KubeServerSource, version: str, kind: str
) -> None:
    """TCPRoute and UDPRoute have no `hostnames`: k8gb takes the host from `k8gb.io/hostname`."""
    gateway(kube_api, "eg", {"value": "192.0.2.30"})
    plural = f"{kind.lower()}s"
    kube_api.create_object(GW, version, plural, route(kind, "db", [], [{"name": "eg"}]))
    annotated = route_ref("db", version, kind, name="db")
    annotated["metadata"]["annotations"] = {"k8gb.io/hostname": "db.cloud.example.com"}
    backends = [NamespacedName(namespace=NS, name="web"), NamespacedName(namespace="shared", name="api")]
    assert await servers.servers(await stored(kube_store, annotated)) == [
        Server(host="db.cloud.example.com", services=backends)
    ]
    bare = await stored(kube_store, route_ref("bare", version, kind, name="db"))
    with pytest.raises(ResolveError, match=f"^{kind} db requires k8gb.io/hostname annotation$"):
        await servers.servers(bare)


@pytest.mark.parametrize(
    ("hostnames", "parents", "message"),
    [
        ([], [{"name": "eg"}], "can't find hosts in route broken"),
        ([HOST], [], "expected exactly 1 Gateway to be referenced by the route but 0 were found"),
        (
            [HOST],
            [{"name": "eg"}, {"name": "eg2", "namespace": "other"}],
            "expected exactly 1 Gateway to be referenced by the route but 2 were found",
        ),
        ([HOST], [{"name": "gone"}], f"Gateway {NS}/gone of HTTPRoute {NS}/broken not found"),
    ],
)
async def test_a_route_that_cannot_work_says_why(
    kube_api: KubeApi,
    kube_store: KubeGslbStore,
    servers: KubeServerSource,
    hostnames: list[str],
    parents: list[dict[str, Any]],
    message: str,
) -> None:
    gateway(kube_api, "eg", {"value": "192.0.2.30"})
    kube_api.create_object(GW, "v1", "httproutes", route("HTTPRoute", "broken", hostnames, parents))
    gslb = await stored(kube_store, route_ref("broken", "v1", "HTTPRoute", name="broken"))
    with pytest.raises(ResolveError) as caught:
        await servers.servers(gslb)
    assert str(caught.value) == message
    assert warnings(kube_api, "ReconcileError") == [message]


async def test_route_references_need_exactly_one_route_and_known_address_types(
    kube: KubeClient,
    kube_api: KubeApi,
    kube_store: KubeGslbStore,
    servers: KubeServerSource,
    events: KubeEvents,
) -> None:
    gateway(kube_api, "eg", {"type": "NamedAddress", "value": "my-lb"})
    for name in ("one", "two"):
        kube_api.create_object(
            GW, "v1", "grpcroutes", route("GRPCRoute", name, [HOST], [{"name": "eg"}], app="g")
        )
    by_labels = await stored(kube_store, route_ref("g", "v1", "GRPCRoute", matchLabels={"app": "g"}))
    with pytest.raises(ResolveError, match="^exactly 1 GRPCRoute resource expected but 2 were found$"):
        await servers.servers(by_labels)
    by_name = await stored(kube_store, route_ref("one", "v1", "GRPCRoute", name="one"))
    with pytest.raises(ExposedIpError, match="^unsupported address type NamedAddress$"):
        await exposed_source(kube, servers, events, None).exposed_ips(by_name)


async def test_a_reconcile_reads_the_route_and_its_gateway_once(
    kube: KubeClient,
    kube_api: KubeApi,
    kube_store: KubeGslbStore,
    servers: KubeServerSource,
    events: KubeEvents,
) -> None:
    """The servers step and the exposed-IP step share one reading (they read twice each)."""
    gateway(kube_api, "eg", {"value": "192.0.2.30"})
    kube_api.create_object(GW, "v1", "httproutes", route("HTTPRoute", "web", [HOST], [{"name": "eg"}]))
    gslb = await stored(kube_store, route_ref("web", "v1", "HTTPRoute", name="web"))

    def reads() -> Counter[str]:
        return Counter(
            r.resource.plural for r in kube_api if r.resource is not None and r.method.value == "GET"
        )

    before = reads()
    assert [s.host for s in await servers.servers(gslb)] == [HOST]
    assert await exposed_source(kube, servers, events, None).exposed_ips(gslb) == ["192.0.2.30"]
    assert reads() - before == Counter({"httproutes": 1, "gateways": 1})
    # a later reconcile (or another version of the Gslb) reads afresh
    assert await exposed_source(kube, servers, events, None).exposed_ips(gslb) == ["192.0.2.30"]
    assert reads() - before == Counter({"httproutes": 2, "gateways": 2})


async def test_what_the_servers_step_resolved_is_not_kept_when_the_exposed_step_needs_none(
    kube: KubeClient,
    kube_api: KubeApi,
    kube_store: KubeGslbStore,
    servers: KubeServerSource,
    events: KubeEvents,
) -> None:
    """With CLUSTER_EXPOSED_IPS (or an address annotation) the exposed-IP step reads no object: the
    servers step's resolution must not be left behind, one per Gslb, for ever."""
    gateway(kube_api, "eg", {"value": "192.0.2.30"})
    kube_api.create_object(GW, "v1", "httproutes", route("HTTPRoute", "web", [HOST], [{"name": "eg"}]))
    source = exposed_source(kube, servers, events, None, cluster_exposed_ips=["198.51.100.1"])
    for name in ("one", "two", "three"):
        gslb = await stored(kube_store, route_ref(name, "v1", "HTTPRoute", name="web"))
        await servers.servers(gslb)
        assert await source.exposed_ips(gslb) == ["198.51.100.1"]
    assert servers._handoff == {}  # noqa: SLF001 - the leak is internal by nature


# --- Istio VirtualService --------------------------------------------------------------------------

ISTIO = "networking.istio.io"


@pytest.fixture
def istio(kube_api: KubeApi) -> None:
    """Istio's resources, as its CRDs install them in a cluster."""
    for plural, kind in (("virtualservices", "VirtualService"), ("gateways", "Gateway")):
        kube_api.register(ResourceType(ISTIO, ("v1", "v1beta1"), plural, kind))


def virtual_service(name: str, hosts: list[str], gateways: list[str], **labels: str) -> Any:
    return {
        "metadata": {"name": name, "namespace": NS, "labels": labels},
        "spec": {
            "hosts": hosts,
            "gateways": gateways,
            "http": [{"route": [{"destination": {"host": "web", "port": {"number": 80}}}]}],
            "tcp": [{"route": [{"destination": {"host": "db"}}]}],
        },
    }


def istio_ingress(kube_api: KubeApi, namespace: str = "istio-system", **selector: str) -> None:
    """Istio's ingress gateway: a Gateway selecting its pods, and their LoadBalancer Service."""
    kube_api.create_object("", "v1", "namespaces", {"metadata": {"name": namespace}})
    gateway = {"metadata": {"name": "public", "namespace": namespace}, "spec": {"selector": selector}}
    kube_api.create_object(ISTIO, "v1", "gateways", gateway)
    service = {"metadata": {"name": "istio-ingressgateway", "namespace": namespace, "labels": selector}}
    kube_api.create_object("", "v1", "services", {**service, "spec": {"type": "LoadBalancer"}})
    lb_status = {"loadBalancer": {"ingress": [{"ip": "192.0.2.50"}]}}
    kube_api.set_status("", "services", namespace, "istio-ingressgateway", lb_status)


def vs_ref(gslb_name: str, version: str = "v1", **ref: Any) -> dict[str, Any]:
    body = referenced(gslb_name, **ref)
    body["spec"]["resourceRef"].update(apiVersion=f"{ISTIO}/{version}", kind="VirtualService")
    return body


@pytest.mark.usefixtures("istio")
async def test_a_referenced_virtual_service_is_exposed_by_its_gateways_service(
    kube: KubeClient,
    kube_api: KubeApi,
    kube_store: KubeGslbStore,
    servers: KubeServerSource,
    events: KubeEvents,
) -> None:
    """k8gb's Istio reference: the hosts, backed by every route's destination; the addresses of the
    one Service the Gateway's selector picks (here in istio-system)."""
    istio_ingress(kube_api, istio="ingressgateway")
    kube_api.create_object(
        ISTIO, "v1", "virtualservices", virtual_service("web", [HOST, HOST], ["mesh", "istio-system/public"])
    )
    backends = [NamespacedName(namespace=NS, name="web"), NamespacedName(namespace=NS, name="db")]
    for version in ("v1", "v1beta1"):
        gslb = await stored(kube_store, vs_ref(f"web-{version}", version, name="web"))
        assert await servers.servers(gslb) == [Server(host=HOST, services=backends)]
        assert await exposed_source(kube, servers, events, None).exposed_ips(gslb) == ["192.0.2.50"]


@pytest.mark.usefixtures("istio")
@pytest.mark.parametrize(
    ("hosts", "gateways", "message"),
    [
        (
            [HOST],
            ["mesh"],
            "expected exactly 1 Gateway to be referenced by the VirtualService but 0 were found",
        ),
        (
            [HOST],
            ["istio-system/public", "other"],
            "expected exactly 1 Gateway to be referenced by the VirtualService but 2 were found",
        ),
        ([HOST], ["absent"], f"Gateway {NS}/absent of VirtualService {NS}/vs not found"),
        ([], ["istio-system/public"], "can't find hosts in VirtualService vs"),
    ],
)
async def test_a_virtual_service_that_cannot_work_says_why(
    kube_api: KubeApi,
    kube_store: KubeGslbStore,
    servers: KubeServerSource,
    hosts: list[str],
    gateways: list[str],
    message: str,
) -> None:
    istio_ingress(kube_api, istio="ingressgateway")
    kube_api.create_object(ISTIO, "v1", "virtualservices", virtual_service("vs", hosts, gateways))
    gslb = await stored(kube_store, vs_ref("vs", name="vs"))
    with pytest.raises(ResolveError) as caught:
        await servers.servers(gslb)
    assert str(caught.value) == message


@pytest.mark.usefixtures("istio")
async def test_the_gateway_must_select_exactly_one_service(
    kube_api: KubeApi, kube_store: KubeGslbStore, servers: KubeServerSource
) -> None:
    istio_ingress(kube_api, istio="ingressgateway")
    twin = {"metadata": {"name": "twin", "namespace": NS, "labels": {"istio": "ingressgateway"}}}
    kube_api.create_object("", "v1", "services", {**twin, "spec": {"type": "LoadBalancer"}})
    kube_api.create_object(
        ISTIO, "v1", "virtualservices", virtual_service("vs", [HOST], ["istio-system/public"])
    )
    gslb = await stored(kube_store, vs_ref("vs", name="vs"))
    with pytest.raises(ResolveError, match="^exactly 1 Service resource expected but 2 were found$"):
        await servers.servers(gslb)


async def test_the_api_refusing_a_lookup_is_a_reconcile_error_event(
    kube_api: KubeApi, kube_store: KubeGslbStore, servers: KubeServerSource
) -> None:
    """No Istio CRDs here: listing VirtualServices is a 404 from the API, said as k8gb says a
    resolver that cannot be built (a Warning ReconcileError), not only in the Ready condition."""
    gslb = await stored(kube_store, vs_ref("nowhere", matchLabels={"app": "web"}))
    with pytest.raises(KubeApiError) as caught:
        await servers.servers(gslb)
    assert caught.value.status == 404
    assert warnings(kube_api, "ReconcileError") == [str(caught.value)]


async def test_an_edge_server_name_behind_a_slow_resolver_costs_the_timeout_not_more(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A hostname Ingress resolved through an edge server given by name: the name's own lookup had no
    deadline, whatever the timeout said."""
    loop = asyncio.get_running_loop()

    async def slow_resolver(*args: object, **kwargs: object) -> list[object]:
        await asyncio.sleep(30)
        return []

    monkeypatch.setattr(loop, "getaddrinfo", slow_resolver)
    started = loop.time()
    with pytest.raises(
        ExposedIpError, match="edge.example.net:53: edge.example.net did not resolve within 0.3s"
    ):
        await resolve_a("lb.example.net", [("edge.example.net", 53)], timeout=0.3)
    assert loop.time() - started < 1.5
