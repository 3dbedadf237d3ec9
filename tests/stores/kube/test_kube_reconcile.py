"""The whole reconcile in kubernetes mode: the controller's pipeline on the kube store, sources and sink,
fed by the store's watch and k8gb's secondary watches, against the emulated API server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from app.stores.base import ObjectKey
from app.stores.kube.client import KubeClient
from app.stores.kube.lease import LeaderElector
from tests.support.gslb_factory import gslb_body
from tests.support.kmockapi import KubeApi, ResourceType

NS = "test-gslb"
HOST = "roundrobin.cloud.example.com"


async def until(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    async with asyncio.timeout(timeout):
        while not (result := check()):
            await asyncio.sleep(0.02)
        return result


def get(api: KubeApi, group: str, plural: str, name: str) -> dict[str, Any] | None:
    return api.get_object(group, plural, NS, name)


def records(api: KubeApi, name: str) -> dict[str, list[str]] | None:
    dnsendpoint = get(api, "externaldns.k8s.io", "dnsendpoints", name)
    if dnsendpoint is None:
        return None
    return {e["dnsName"]: e["targets"] for e in dnsendpoint["spec"].get("endpoints", [])}


def ready_backend(api: KubeApi, service: str, ready: bool = True) -> None:
    api.create_object("", "v1", "services", {"metadata": {"name": service, "namespace": NS}, "spec": {}})
    api.create_object(
        "discovery.k8s.io",
        "v1",
        "endpointslices",
        {
            "metadata": {
                "name": f"{service}-1",
                "namespace": NS,
                "labels": {"kubernetes.io/service-name": service},
            },
            "endpoints": [{"addresses": ["10.244.0.5"], "conditions": {"ready": ready}}],
        },
    )


def set_ingress_ip(api: KubeApi, name: str, ip: str) -> None:
    api.set_status("networking.k8s.io", "ingresses", NS, name, {"loadBalancer": {"ingress": [{"ip": ip}]}})


def referencing(api: KubeApi, ref: dict[str, Any], annotations: dict[str, str] | None = None) -> None:
    """Apply the Gslb `podinfo` with `resourceRef: ref` (and no embedded Ingress)."""
    body = gslb_body("podinfo", namespace=NS)
    del body["spec"]["ingress"]
    body["metadata"]["annotations"] = annotations or {}
    body["spec"]["resourceRef"] = ref
    api.create_object("k8gb.io", "v1beta1", "gslbs", body)


async def served_healthy_from(api: KubeApi, ip: str) -> Any:
    """Wait until `podinfo`'s host has records pointing at `ip` and a Healthy status; its status."""
    assert await until(lambda: records(api, "podinfo")) == {f"localtargets-{HOST}": [ip], HOST: [ip]}
    status = await until(lambda: _status_of(api, "podinfo"))
    assert status["serviceHealth"] == {HOST: "Healthy"}
    return status


async def test_embedded_gslb_from_apply_to_records_status_and_deletion(
    kube_api: KubeApi, replica: Any
) -> None:
    ready_backend(kube_api, "frontend")
    kube_api.create_object(
        "k8gb.io", "v1beta1", "gslbs", gslb_body("app", namespace=NS, host=HOST, service="frontend")
    )

    ingress = await until(lambda: get(kube_api, "networking.k8s.io", "ingresses", "app"))
    assert ingress["metadata"]["labels"] == {"app.k8gb.io/managed-by": "gslb"}
    gslb = await until(lambda: (g := get(kube_api, "k8gb.io", "gslbs", "app")) and g.get("status") and g)
    assert gslb["spec"]["strategy"]["dnsTtlSeconds"] == 30  # defaulted by the API server (the CRD)
    assert gslb["status"]["serviceHealth"] == {HOST: "Healthy"} and gslb["status"]["healthyRecords"] == {}

    set_ingress_ip(kube_api, "app", "192.0.2.10")  # the ingress controller got an address
    assert await until(lambda: records(kube_api, "app")) == {
        f"localtargets-{HOST}": ["192.0.2.10"],
        HOST: ["192.0.2.10"],
    }
    status = (await until(lambda: _status_with_records(kube_api, "app")))["status"]
    assert status["geoTag"] == "eu" and status["hosts"] == HOST
    assert status["loadBalancer"] == {"exposedIps": ["192.0.2.10"]}
    assert status["servers"] == [{"host": HOST, "services": [{"namespace": NS, "name": "frontend"}]}]
    assert status["healthyRecords"] == {HOST: ["192.0.2.10"]}
    assert get(kube_api, "k8gb.io", "gslbs", "app")["metadata"]["generation"] == 1  # type: ignore[index]

    slice_ = get(kube_api, "discovery.k8s.io", "endpointslices", "frontend-1")
    assert slice_ is not None
    slice_["endpoints"][0]["conditions"]["ready"] = False
    kube_api.update_object("discovery.k8s.io", "endpointslices", slice_)  # the pods went unready
    await until(lambda: records(kube_api, "app") == {})
    await until(
        lambda: get(kube_api, "k8gb.io", "gslbs", "app")["status"]["serviceHealth"] == {HOST: "Unhealthy"}
    )  # type: ignore[index]

    kube_api.delete_object("k8gb.io", "gslbs", NS, "app")
    assert get(kube_api, "externaldns.k8s.io", "dnsendpoints", "app") is None
    assert get(kube_api, "networking.k8s.io", "ingresses", "app") is None


async def test_a_zero_ttl_is_defaulted_and_written_back_as_k8gb_does(kube_api: KubeApi, replica: Any) -> None:
    """The schema's default covers an absent TTL; 0 (or a CRD without the default) is the controller's."""
    ready_backend(kube_api, "frontend")
    body = gslb_body("app", namespace=NS, host=HOST, service="frontend", dnsTtlSeconds=0)
    kube_api.create_object("k8gb.io", "v1beta1", "gslbs", body)
    gslb = await until(lambda: (g := get(kube_api, "k8gb.io", "gslbs", "app")) and g.get("status") and g)
    assert gslb["spec"]["strategy"]["dnsTtlSeconds"] == 30
    assert gslb["metadata"]["generation"] == 2
    assert gslb["status"]["observedGeneration"] == 2


def _status_with_records(api: KubeApi, name: str) -> dict[str, Any] | None:
    gslb = get(api, "k8gb.io", "gslbs", name)
    return gslb if gslb and (gslb.get("status") or {}).get("healthyRecords") else None


async def settled_app(kube_api: KubeApi, replica: Any) -> None:
    """Gslb `app` with a healthy backend and an ingress address, reconciled and nothing left to do."""
    ready_backend(kube_api, "frontend")
    kube_api.create_object(
        "k8gb.io", "v1beta1", "gslbs", gslb_body("app", namespace=NS, host=HOST, service="frontend")
    )
    await until(lambda: get(kube_api, "networking.k8s.io", "ingresses", "app"))
    set_ingress_ip(kube_api, "app", "192.0.2.10")
    await until(lambda: _status_with_records(kube_api, "app"))
    await replica.controller.wait_idle()


async def test_our_own_writes_do_not_loop(kube_api: KubeApi, replica: Any) -> None:
    await settled_app(kube_api, replica)
    settled = replica.reconciled.count(ObjectKey("k8gb.io", NS, "app"))

    kube_api.create_object(
        "k8gb.io", "v1beta1", "gslbs", gslb_body("marker", namespace=NS, host="m.cloud.example.com")
    )
    await until(lambda: _status_of(kube_api, "marker"))
    await replica.controller.wait_idle()
    assert replica.reconciled.count(ObjectKey("k8gb.io", NS, "app")) == settled


def _status_of(api: KubeApi, name: str) -> Any:
    gslb = get(api, "k8gb.io", "gslbs", name)
    return gslb and gslb.get("status")


def web_ingress(api: KubeApi) -> None:
    """Ingress `web` for HOST, backed by the ready Service `web`, at 198.51.100.4: what Gslbs reference."""
    ready_backend(api, "web")
    rules = [
        {
            "host": HOST,
            "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web"}}}]},
        }
    ]
    ingress = {"metadata": {"name": "web", "namespace": NS}, "spec": {"rules": rules}}
    api.create_object("networking.k8s.io", "v1", "ingresses", ingress)
    set_ingress_ip(api, "web", "198.51.100.4")


async def test_referenced_ingress_and_reconcile_errors(kube_api: KubeApi, replica: Any) -> None:
    web_ingress(kube_api)
    for name, ref in (("ref", "web"), ("broken", "nowhere")):
        body = gslb_body(name, namespace=NS)
        del body["spec"]["ingress"]
        body["spec"]["resourceRef"] = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": ref}
        kube_api.create_object("k8gb.io", "v1beta1", "gslbs", body)
    assert await until(lambda: records(kube_api, "ref")) == {
        f"localtargets-{HOST}": ["198.51.100.4"],
        HOST: ["198.51.100.4"],
    }
    event = await until(
        lambda: [e for e in kube_api.objects("", "events", NS) if e["reason"] == "ReconcileError"]
    )
    assert event[0]["involvedObject"]["name"] == "broken"
    assert event[0]["message"] == f"referenced Ingress {NS}/nowhere not found"
    assert get(kube_api, "externaldns.k8s.io", "dnsendpoints", "broken") is None


async def test_twins_referencing_one_ingress_get_a_reconcile_error_event_for_the_dnsendpoint(
    kube_api: KubeApi, replica: Any
) -> None:
    """With resourceRef the twins share no Ingress of their own: the DNSEndpoint of that name is what
    they would both write, and the second is refused with a ReconcileError event naming its owner."""
    web_ingress(kube_api)
    ref = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "web"}
    for group in ("k8gb.absa.oss", "k8gb.io"):
        body = gslb_body("twin", group=group, namespace=NS)
        del body["spec"]["ingress"]
        body["spec"]["resourceRef"] = ref
        kube_api.create_object(group, "v1beta1", "gslbs", body)
        if group == "k8gb.absa.oss":
            await until(lambda: records(kube_api, "twin"))
    event = await until(
        lambda: [e for e in kube_api.objects("", "events", NS) if e["reason"] == "ReconcileError"]
    )
    assert event[0]["involvedObject"]["apiVersion"] == "k8gb.io/v1beta1"
    assert event[0]["message"].startswith(
        f"DNSEndpoint {NS}/twin is controlled by Gslb twin of k8gb.absa.oss/v1beta1"
    )


async def test_a_loadbalancer_service_reference_is_reconciled_as_k8gb_does(
    kube_api: KubeApi, replica: Any
) -> None:
    """The manifest of k8gb's docs: resourceRef to a LoadBalancer Service by labels, the host from
    `k8gb.io/hostname`; health from the Service's EndpointSlices, addresses from its status."""
    ready_backend(kube_api, "podinfo-lb")
    service = get(kube_api, "", "services", "podinfo-lb")
    assert service is not None
    service["metadata"]["labels"] = {"app.kubernetes.io/name": "podinfo"}
    service["spec"] = {"type": "LoadBalancer", "ports": [{"port": 8080}]}
    kube_api.update_object("", "services", service)
    kube_api.set_status(
        "", "services", NS, "podinfo-lb", {"loadBalancer": {"ingress": [{"ip": "203.0.113.20"}]}}
    )
    ref = {"apiVersion": "v1", "kind": "Service", "matchLabels": {"app.kubernetes.io/name": "podinfo"}}
    referencing(kube_api, ref, {"k8gb.io/hostname": HOST})

    status = await served_healthy_from(kube_api, "203.0.113.20")
    assert status["servers"] == [{"host": HOST, "services": [{"name": "podinfo-lb", "namespace": NS}]}]
    assert get(kube_api, "networking.k8s.io", "ingresses", "podinfo") is None  # nothing embedded


async def test_an_httproute_reference_is_reconciled_as_k8gb_does(kube_api: KubeApi, replica: Any) -> None:
    """Gateway API: the route's hostname, its backend's health, its Gateway's address."""
    gw = "gateway.networking.k8s.io"
    kube_api.register(ResourceType(gw, ("v1",), "gateways", "Gateway", status=True))
    kube_api.register(ResourceType(gw, ("v1",), "httproutes", "HTTPRoute", status=True))
    ready_backend(kube_api, "podinfo")
    kube_api.create_object(gw, "v1", "gateways", {"metadata": {"name": "eg", "namespace": NS}, "spec": {}})
    kube_api.set_status(
        gw, "gateways", NS, "eg", {"addresses": [{"type": "IPAddress", "value": "203.0.113.30"}]}
    )
    route = {
        "metadata": {"name": "podinfo", "namespace": NS},
        "spec": {
            "parentRefs": [{"name": "eg"}],
            "hostnames": [HOST],
            "rules": [{"backendRefs": [{"name": "podinfo", "port": 9898}]}],
        },
    }
    kube_api.create_object(gw, "v1", "httproutes", route)
    referencing(kube_api, {"apiVersion": f"{gw}/v1", "kind": "HTTPRoute", "name": "podinfo"})

    await served_healthy_from(kube_api, "203.0.113.30")


async def test_a_virtual_service_reference_is_reconciled_as_k8gb_does(
    kube_api: KubeApi, replica: Any
) -> None:
    """Istio: the VirtualService's host, its route destination's health, the address of the Service
    its Gateway selects (in istio-system)."""
    istio = "networking.istio.io"
    for plural, kind in (("virtualservices", "VirtualService"), ("gateways", "Gateway")):
        kube_api.register(ResourceType(istio, ("v1",), plural, kind))
    ready_backend(kube_api, "podinfo")
    kube_api.create_object("", "v1", "namespaces", {"metadata": {"name": "istio-system"}})
    selector = {"istio": "ingressgateway"}
    gateway = {"metadata": {"name": "public", "namespace": "istio-system"}, "spec": {"selector": selector}}
    kube_api.create_object(istio, "v1", "gateways", gateway)
    lb = {"name": "istio-ingressgateway", "namespace": "istio-system", "labels": selector}
    kube_api.create_object("", "v1", "services", {"metadata": lb, "spec": {"type": "LoadBalancer"}})
    lb_status = {"loadBalancer": {"ingress": [{"ip": "203.0.113.40"}]}}
    kube_api.set_status("", "services", "istio-system", "istio-ingressgateway", lb_status)
    virtual_service = {
        "metadata": {"name": "podinfo", "namespace": NS},
        "spec": {
            "hosts": [HOST],
            "gateways": ["istio-system/public"],
            "http": [{"route": [{"destination": {"host": "podinfo"}}]}],
        },
    }
    kube_api.create_object(istio, "v1", "virtualservices", virtual_service)
    referencing(kube_api, {"apiVersion": f"{istio}/v1", "kind": "VirtualService", "name": "podinfo"})

    await served_healthy_from(kube_api, "203.0.113.40")


async def test_ready_moves_its_transition_time_only_when_its_status_changes(
    kube_api: KubeApi, replica: Any
) -> None:
    ready_backend(kube_api, "frontend")
    kube_api.create_object(
        "k8gb.io", "v1beta1", "gslbs", gslb_body("app", namespace=NS, host=HOST, service="frontend")
    )
    await until(lambda: get(kube_api, "networking.k8s.io", "ingresses", "app"))
    set_ingress_ip(kube_api, "app", "192.0.2.10")

    def ready() -> dict[str, Any] | None:
        conditions = (_status_of(kube_api, "app") or {}).get("conditions") or []
        return next((c for c in conditions if c["type"] == "Ready"), None)

    first = await until(lambda: (c := ready()) and c["reason"] == "Reconciled" and c)
    await asyncio.sleep(1.1)  # timestamps have whole seconds
    endpoints = get(kube_api, "discovery.k8s.io", "endpointslices", "frontend-1")
    assert endpoints is not None
    endpoints["endpoints"][0]["conditions"]["ready"] = False
    kube_api.update_object("discovery.k8s.io", "endpointslices", endpoints)
    no_targets = await until(lambda: (c := ready()) and c["reason"] == "NoTargets" and c)
    assert no_targets["status"] == first["status"] == "True"
    assert no_targets["lastTransitionTime"] == first["lastTransitionTime"]


async def test_twins_in_both_groups_do_not_overwrite_each_other(kube_api: KubeApi, replica: Any) -> None:
    """A legacy Gslb and its k8gb.io twin of the same name: the first keeps the Ingress and DNSEndpoint
    it controls, the second is refused with a ReconcileError instead of both rewriting them in turn;
    once the first is deleted, the second takes its place."""
    ready_backend(kube_api, "frontend")
    legacy_host, new_host = "dup-legacy.cloud.example.com", "dup-new.cloud.example.com"
    kube_api.create_object(
        "k8gb.absa.oss",
        "v1beta1",
        "gslbs",
        gslb_body("dup", group="k8gb.absa.oss", namespace=NS, host=legacy_host, service="frontend"),
    )
    await until(lambda: get(kube_api, "networking.k8s.io", "ingresses", "dup"))
    set_ingress_ip(kube_api, "dup", "192.0.2.7")
    assert await until(lambda: records(kube_api, "dup")) == {
        f"localtargets-{legacy_host}": ["192.0.2.7"],
        legacy_host: ["192.0.2.7"],
    }
    kube_api.create_object(
        "k8gb.io", "v1beta1", "gslbs", gslb_body("dup", namespace=NS, host=new_host, service="frontend")
    )
    event = await until(
        lambda: [e for e in kube_api.objects("", "events", NS) if e["reason"] == "ReconcileError"]
    )
    assert event[0]["involvedObject"]["apiVersion"] == "k8gb.io/v1beta1"
    assert event[0]["message"].startswith(
        f"Ingress {NS}/dup is controlled by Gslb dup of k8gb.absa.oss/v1beta1"
    )
    ready = await until(lambda: (_status_of(kube_api, "dup") or {}).get("conditions"))
    assert ready[0]["status"] == "False" and "is controlled by Gslb dup" in ready[0]["message"]
    assert "label the k8gb.absa.oss one k8gb.io/migration-requested=true" in event[0]["message"]  # the fix
    for _ in range(3):  # resyncs (requeue 0) leave the legacy Gslb's objects as they are
        await asyncio.sleep(0.2)
        assert legacy_host in (records(kube_api, "dup") or {})
        ingress = get(kube_api, "networking.k8s.io", "ingresses", "dup")
        assert ingress is not None and ingress["spec"]["rules"][0]["host"] == legacy_host

    kube_api.delete_object("k8gb.absa.oss", "gslbs", NS, "dup")  # its Ingress and DNSEndpoint go with it
    ingress = await until(
        lambda: (
            (i := get(kube_api, "networking.k8s.io", "ingresses", "dup"))
            and i["metadata"]["ownerReferences"][0]["apiVersion"] == "k8gb.io/v1beta1"
            and i
        ),
        timeout=20,
    )
    assert ingress["spec"]["rules"][0]["host"] == new_host


def withdrawals(replica: Any) -> list[ObjectKey]:
    """The keys whose reconcile finds their Gslb deleted or being deleted, from now on."""
    seen: list[ObjectKey] = []
    before = replica.controller.on_reconciled

    def on_reconciled(key: ObjectKey, outcome: Any) -> None:
        before(key, outcome)
        if outcome is not None and outcome.deleted:
            seen.append(key)

    replica.controller.on_reconciled = on_reconciled
    return seen


def controller_uid(api: KubeApi, plural: str, group: str = "externaldns.k8s.io") -> str | None:
    obj = get(api, group, plural, "app")
    refs = (obj or {}).get("metadata", {}).get("ownerReferences") or []
    return next((r["uid"] for r in refs if r.get("controller")), None)


async def test_an_orphan_delete_keeps_the_dnsendpoint_and_a_new_gslb_adopts_it(
    kube_api: KubeApi, replica: Any
) -> None:
    """`propagationPolicy: Orphan` keeps the Gslb's Ingress and DNSEndpoint, records and all (the
    controller deleted the DNSEndpoint the collector had just orphaned); the Gslb applied again takes
    the DNSEndpoint over, and its Background delete takes it away."""
    await settled_app(kube_api, replica)
    served = records(kube_api, "app")
    gone = withdrawals(replica)
    kube_api.delete_object("k8gb.io", "gslbs", NS, "app", propagation="Orphan")
    await until(lambda: gone)
    await replica.controller.wait_idle()
    await asyncio.sleep(0.2)  # anything the deletion's events still trigger
    await replica.controller.wait_idle()
    assert get(kube_api, "k8gb.io", "gslbs", "app") is None
    assert records(kube_api, "app") == served and controller_uid(kube_api, "dnsendpoints") is None
    assert get(kube_api, "networking.k8s.io", "ingresses", "app") is not None

    kube_api.create_object(
        "k8gb.io", "v1beta1", "gslbs", gslb_body("app", namespace=NS, host=HOST, service="frontend")
    )
    again = await until(lambda: get(kube_api, "k8gb.io", "gslbs", "app"))
    await until(lambda: controller_uid(kube_api, "dnsendpoints") == again["metadata"]["uid"])
    assert records(kube_api, "app") == served
    # The orphaned Ingress is updated, not adopted, as k8gb does: it outlives the Gslb from now on.
    assert controller_uid(kube_api, "ingresses", "networking.k8s.io") is None

    kube_api.delete_object("k8gb.io", "gslbs", NS, "app")
    await until(lambda: get(kube_api, "externaldns.k8s.io", "dnsendpoints", "app") is None)


async def test_the_controller_deletes_only_the_dnsendpoint_the_deleted_gslb_still_controls(
    kube_api: KubeApi, replica: Any
) -> None:
    """While the garbage collector lags: an Orphan delete's Gslb, still there with the `orphan`
    finalizer, keeps its DNSEndpoint although it still references it; a Background delete's
    DNSEndpoint is deleted at once by the controller, before the collector gets to it."""
    await settled_app(kube_api, replica)
    served = records(kube_api, "app")
    kube_api.gc_paused = True
    gone = withdrawals(replica)
    kube_api.delete_object("k8gb.io", "gslbs", NS, "app", propagation="Orphan")
    await until(lambda: gone)
    await replica.controller.wait_idle()
    assert get(kube_api, "k8gb.io", "gslbs", "app")["metadata"]["finalizers"] == ["orphan"]  # type: ignore[index]
    assert records(kube_api, "app") == served and controller_uid(kube_api, "dnsendpoints")
    kube_api.collect_garbage()
    await until(lambda: len(gone) > 1)
    await replica.controller.wait_idle()
    assert records(kube_api, "app") == served and controller_uid(kube_api, "dnsendpoints") is None

    kube_api.delete_object("externaldns.k8s.io", "dnsendpoints", NS, "app")
    kube_api.delete_object("networking.k8s.io", "ingresses", NS, "app")
    kube_api.create_object(
        "k8gb.io", "v1beta1", "gslbs", gslb_body("app", namespace=NS, host=HOST, service="frontend")
    )
    await until(lambda: get(kube_api, "networking.k8s.io", "ingresses", "app"))
    set_ingress_ip(kube_api, "app", "192.0.2.10")
    await until(lambda: records(kube_api, "app") == served)
    await replica.controller.wait_idle()
    kube_api.delete_object("k8gb.io", "gslbs", NS, "app")  # Background
    await until(lambda: get(kube_api, "externaldns.k8s.io", "dnsendpoints", "app") is None)
    assert get(kube_api, "networking.k8s.io", "ingresses", "app") is not None  # the collector's, later
    kube_api.collect_garbage()
    assert get(kube_api, "networking.k8s.io", "ingresses", "app") is None


async def test_annotated_ingress_end_to_end(kube_api: KubeApi, replica: Any) -> None:
    ready_backend(kube_api, "shop")
    rules = [
        {
            "host": HOST,
            "http": {
                "paths": [{"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "shop"}}}]
            },
        }
    ]
    annotations = {
        "k8gb.io/strategy": "failover",
        "k8gb.io/primary-geotag": "eu",
        "k8gb.io/dns-ttl-seconds": "5",
    }
    kube_api.create_object(
        "networking.k8s.io",
        "v1",
        "ingresses",
        {"metadata": {"name": "shop", "namespace": NS, "annotations": annotations}, "spec": {"rules": rules}},
    )
    set_ingress_ip(kube_api, "shop", "203.0.113.8")
    await until(lambda: records(kube_api, "shop"))
    dnsendpoint = get(kube_api, "externaldns.k8s.io", "dnsendpoints", "shop")
    assert dnsendpoint is not None
    host_record = next(e for e in dnsendpoint["spec"]["endpoints"] if e["dnsName"] == HOST)
    assert host_record == {
        "dnsName": HOST,
        "targets": ["203.0.113.8"],
        "recordType": "A",
        "recordTTL": 5,
        "labels": {"strategy": "failover"},
    }
    kube_api.delete_object("networking.k8s.io", "ingresses", NS, "shop")
    assert get(kube_api, "k8gb.io", "gslbs", "shop") is None
    assert get(kube_api, "externaldns.k8s.io", "dnsendpoints", "shop") is None


FAST_LEASE = {"lease_duration": 1.0, "renew_deadline": 0.6, "retry_period": 0.1}


async def test_leader_handover_loses_no_reconcile(
    kube_api: KubeApi, kube: KubeClient, replica_factory: Any
) -> None:
    """Only the leader reconciles; a successor rebuilds its queue from a list, so a Gslb created while
    nobody led is reconciled too."""

    async def candidate(identity: str) -> tuple[LeaderElector, asyncio.Task[None], list[Any]]:
        leading: list[Any] = []

        async def lead() -> None:
            replica = await replica_factory()
            leading.append(replica)
            await replica.start()

        async def step_down() -> None:
            if leading:
                await leading.pop().stop()

        elector = LeaderElector(kube, "k8gb", "pygslb-controller", identity, **FAST_LEASE)
        return elector, asyncio.create_task(elector.run(lead, step_down)), leading

    kube_api.create_object(
        "k8gb.io", "v1beta1", "gslbs", gslb_body("first", namespace=NS, host="first.cloud.example.com")
    )
    a_elector, a_task, a_leading = await candidate("replica-a")
    await until(lambda: _status_of(kube_api, "first"))
    assert a_elector.is_leader and a_leading

    a_task.cancel()  # replica-a shuts down: the Lease is released, and it stops its own work
    with contextlib.suppress(asyncio.CancelledError):
        await a_task
    await a_leading.pop().stop()
    kube_api.create_object(
        "k8gb.io", "v1beta1", "gslbs", gslb_body("during", namespace=NS, host="during.cloud.example.com")
    )

    b_elector, b_task, b_leading = await candidate("replica-b")
    try:
        await until(lambda: _status_of(kube_api, "during"))
        assert b_elector.is_leader and b_leading
        assert ObjectKey("k8gb.io", NS, "during") in b_leading[0].reconciled
        assert (
            ObjectKey("k8gb.io", NS, "first") in b_leading[0].reconciled
        )  # the queue was rebuilt from a list
    finally:
        b_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await b_task


async def test_a_resync_of_an_unchanged_gslb_asks_the_api_nothing(kube_api: KubeApi, replica: Any) -> None:
    """Reads come from the informers: an unchanged Gslb is reconciled without a single request."""
    await settled_app(kube_api, replica)
    key = ObjectKey("k8gb.io", NS, "app")
    before, reconciled = len(list(kube_api)), replica.reconciled.count(key)

    for round_ in range(1, 4):
        replica.controller.queue.add(key, None, "resync")
        await until(lambda n=round_: replica.reconciled.count(key) >= reconciled + n)
        await replica.controller.wait_idle()
    requests = [f"{r.method.value} {r.url.path}" for r in list(kube_api)[before:]]
    assert requests == []
    assert records(kube_api, "app") == {f"localtargets-{HOST}": ["192.0.2.10"], HOST: ["192.0.2.10"]}


async def test_the_controller_starts_from_the_informers_list_not_a_second_one(
    kube_api: KubeApi, replica_factory: Callable[[], Awaitable[Any]]
) -> None:
    """Every Gslb that exists at start is queued from the informers' first list: one LIST per Gslb
    group in all (at 10,000 Gslbs a second LIST and parse of every Gslb delayed the first reconcile)."""
    for name in ("one", "two"):
        kube_api.create_object(
            "k8gb.io", "v1beta1", "gslbs", gslb_body(name, namespace=NS, host=f"{name}.cloud.example.com")
        )
    before = len(list(kube_api))
    replica = await replica_factory()
    await replica.start()
    try:
        await until(lambda: replica.controller.synced)
        assert {k.name for k in replica.reconciled} >= {"one", "two"}
        lists = [
            r.url.path
            for r in list(kube_api)[before:]
            if r.method.value == "GET" and r.url.path.endswith("/gslbs") and "watch" not in r.url.query
        ]
        assert sorted(lists) == ["/apis/k8gb.absa.oss/v1beta1/gslbs", "/apis/k8gb.io/v1beta1/gslbs"]
    finally:
        await replica.stop()
