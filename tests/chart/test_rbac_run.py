"""The chart's RBAC is what a real kubernetes-mode run needs, no more and no less: `gslb serve`, with the
chart's leader election on, goes through every kind of object it reads and writes against the emulated API
server, and the (group, resource, verb) set of its requests is compared with the rendered ClusterRole and
Role. A verb the code starts to issue fails the first assertion (it would be a 403 in a cluster); a grant
the code no longer uses fails the second."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpx
import kmock
import pytest

from tests.stores.kube.test_kube_reconcile import ready_backend, set_ingress_ip
from tests.stores.kube.test_kube_sources import (
    GW,
    ISTIO,
    NS,
    gateway,
    istio_ingress,
    lb_service,
    referenced,
    route,
    route_ref,
    service_ref,
    virtual_service,
    vs_ref,
)
from tests.support import chart as helm
from tests.support.gslb_factory import gslb_body
from tests.support.instance import eventually, running
from tests.support.kmockapi import KubeApi, ResourceType, kube_mode_settings, load_yaml_documents, running_api

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
Grant = tuple[str, str, str]  # API group, resource (with /subresource), verb
TOKEN = "rbac-run-editor"
CRDS = load_yaml_documents(sorted((helm.CHART_DIR / "crds").glob("*.yaml")))
ROUTES = ("httproutes", "grpcroutes", "tlsroutes", "tcproutes", "udproutes")
GROUPS = ("k8gb.io", "k8gb.absa.oss")

# Granted, yet no request of the run shows it, for a reason a request log cannot show:
NOT_A_REQUEST = {
    # The OwnerReferencesPermissionEnforcement admission plugin asks for it when the controller sets
    # blockOwnerDeletion on the Ingress and DNSEndpoint a Gslb owns; no request names it.
    (group, "gslbs/finalizers", "update")
    for group in GROUPS
}


def _verb(request: kmock.Request) -> str:
    method = str(request.method).upper().rsplit(".", 1)[-1]
    if method == "GET":
        if request.name:
            return "get"
        return "watch" if str(request.params.get("watch", "")).lower() in ("true", "1") else "list"
    return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(
        method, "delete" if request.name else "deletecollection"
    )


def issued(api: KubeApi) -> set[Grant]:
    """What the run asked the API server for, in RBAC's terms (discovery needs no grant)."""
    grants: set[Grant] = set()
    for request in api:
        if request.resource is None or request.resource.plural is None:
            continue
        resource = request.resource.plural
        if request.subresource:
            resource += f"/{request.subresource}"
        grants.add((request.resource.group or "", resource, _verb(request)))
    return grants


def granted(rendered: helm.Rendered) -> set[Grant]:
    return {
        (group, resource, verb)
        for role in rendered.all("ClusterRole") + rendered.all("Role")
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def _routes_as_one(grants: Iterable[Grant]) -> set[Grant]:
    """One route kind stands for all: one code path reads every kind a resourceRef may name."""
    return {(g, "httproutes" if g == GW and r in ROUTES else r, v) for g, r, v in grants}


def _third_party_kinds(api: KubeApi) -> None:
    """Gateway API and Istio, as their CRDs install them in a cluster."""
    for versions, plural, kind in (
        (("v1",), "gateways", "Gateway"),
        (("v1",), "httproutes", "HTTPRoute"),
    ):
        api.register(ResourceType(GW, versions, plural, kind, status=True))
    for plural, kind in (("virtualservices", "VirtualService"), ("gateways", "Gateway")):
        api.register(ResourceType(ISTIO, ("v1", "v1beta1"), plural, kind))


def _sources(api: KubeApi) -> None:
    """One Gslb per way a Gslb finds its hosts: embedded, each API group, a Service, a Gateway API
    route and an Istio VirtualService, each by name and by labels; an annotated Ingress; a broken one."""
    ready_backend(api, "frontend-podinfo")
    api.create_object("k8gb.io", "v1beta1", "gslbs", gslb_body("embedded", namespace=NS))
    legacy = gslb_body("legacy", group="k8gb.absa.oss", namespace=NS, host="legacy.cloud.example.com")
    api.create_object("k8gb.absa.oss", "v1beta1", "gslbs", legacy)
    api.create_object("", "v1", "services", lb_service("lb", ips=("192.0.2.40",)))
    api.create_object("k8gb.io", "v1beta1", "gslbs", service_ref("by-service", name="lb"))
    gateway(api, "eg", {"type": "IPAddress", "value": "192.0.2.30"})
    web = route("HTTPRoute", "web", ["web.cloud.example.com"], [{"name": "eg"}], app="web")
    api.create_object(GW, "v1", "httproutes", web)
    api.create_object("k8gb.io", "v1beta1", "gslbs", route_ref("by-route", "v1", "HTTPRoute", name="web"))
    api.create_object(
        "k8gb.io", "v1beta1", "gslbs", route_ref("by-routes", "v1", "HTTPRoute", matchLabels={"app": "web"})
    )
    istio_ingress(api, istio="ingressgateway")
    vs = virtual_service("vs", ["vs.cloud.example.com"], ["istio-system/public"], app="vs")
    api.create_object(ISTIO, "v1", "virtualservices", vs)
    api.create_object("k8gb.io", "v1beta1", "gslbs", vs_ref("by-vs", name="vs"))
    api.create_object("k8gb.io", "v1beta1", "gslbs", vs_ref("by-vss", matchLabels={"app": "vs"}))
    by_labels = referenced("by-ingresses", matchLabels={"app": "none"})  # a list, and a ReconcileError
    api.create_object("k8gb.io", "v1beta1", "gslbs", by_labels)
    annotated = {
        "metadata": {
            "name": "annotated",
            "namespace": NS,
            "annotations": {"k8gb.io/strategy": "roundRobin"},
        },
        "spec": {"rules": [{"host": "annotated.cloud.example.com"}]},
    }
    api.create_object("networking.k8s.io", "v1", "ingresses", annotated)
    broken = {
        "metadata": {"name": "broken", "namespace": NS, "annotations": {"k8gb.io/strategy": "nonsense"}},
        "spec": {"rules": [{"host": "broken.cloud.example.com"}]},
    }
    api.create_object("networking.k8s.io", "v1", "ingresses", broken)  # a Warning event


async def _rest_writes(api_url: str) -> None:
    """The REST API writes with the controller's own credentials, after the caller's token is reviewed."""
    async with httpx.AsyncClient(
        base_url=api_url, timeout=10, headers={"Authorization": f"Bearer {TOKEN}"}
    ) as c:
        for group in GROUPS:
            collection = f"/apis/{group}/v1beta1/namespaces/{NS}/gslbs"
            body = gslb_body("rest", group=group, namespace=NS, host=f"rest-{group}.cloud.example.com")
            created = await c.post(collection, json=body)
            assert created.status_code == 201, created.text
            body = created.json()
            body["spec"]["strategy"]["dnsTtlSeconds"] = 60
            # unconditional: the controller writes the status meanwhile
            del body["metadata"]["resourceVersion"]
            replaced = await c.put(f"{collection}/rest", json=body)
            assert replaced.status_code == 200, replaced.text
            deleted = await c.delete(f"{collection}/rest")
            assert deleted.status_code == 200, deleted.text


async def test_the_chart_grants_exactly_what_a_kubernetes_mode_run_asks_for(tmp_path: Any) -> None:
    rendered = helm.render({"pygslb": {"replicas": 2}})  # leader election: the Role for Leases too
    async with running_api(tmp_path) as api:
        api.install_crds(CRDS)
        _third_party_kinds(api)
        api.access.add_token(TOKEN, "editor")
        for group in GROUPS:
            api.access.allow("editor", ["create", "get", "list", "update", "delete"], group=group)
        _sources(api)
        settings = kube_mode_settings(api, GSLB_LEADER_ELECTION="true", POD_NAME="gslb-0")
        async with running(tmp_path, **settings) as gslb:
            embedded = lambda: _exists(api, "externaldns.k8s.io", "dnsendpoints", "embedded")  # noqa: E731
            await eventually(embedded, True, timeout=20)
            set_ingress_ip(api, "embedded", "192.0.2.10")  # the DNSEndpoint is replaced
            await eventually(lambda: _exists(api, "k8gb.io", "gslbs", "annotated"), True, timeout=20)
            await _rest_writes(gslb.api)
            # a changed spec replaces the embedded Ingress
            gslb_object = api.get_object("k8gb.io", "gslbs", NS, "embedded")
            assert gslb_object is not None
            gslb_object["spec"]["ingress"]["rules"][0]["host"] = "moved.cloud.example.com"
            api.update_object("k8gb.io", "gslbs", gslb_object)
            await eventually(lambda: _ingress_host(api, "embedded"), "moved.cloud.example.com", timeout=20)
            # a garbage collector lagging behind the delete, as in a cluster: the controller withdraws the
            # DNSEndpoint the deleted Gslb still controls itself
            api.gc_paused = True
            api.delete_object("k8gb.io", "gslbs", NS, "embedded", propagation="Background")
            await eventually(embedded, False, timeout=20)
            api.gc_paused = False
            api.collect_garbage()
            # the same Warning again is a PATCH of the Event: the annotation workflow looks again
            broken = api.get_object("networking.k8s.io", "ingresses", NS, "broken")
            assert broken is not None
            broken["metadata"]["labels"] = {"touched": "yes"}
            api.update_object("networking.k8s.io", "ingresses", broken)
            wanted = {
                ("", "events", "patch"),
                ("externaldns.k8s.io", "dnsendpoints", "update"),
                ("coordination.k8s.io", "leases", "update"),  # renewed every 2 s
            }
            await eventually(lambda: _all_seen(api, wanted), True, timeout=20)

    used = issued(api)
    grants = granted(rendered)
    assert used - grants == set(), "requests the chart's RBAC would refuse with 403"
    unused = _routes_as_one(grants) - _routes_as_one(used) - NOT_A_REQUEST
    assert unused == set(), "granted but never asked for"


async def _exists(api: KubeApi, group: str, plural: str, name: str) -> bool:
    return api.get_object(group, plural, NS, name) is not None


async def _ingress_host(api: KubeApi, name: str) -> str | None:
    ingress = api.get_object("networking.k8s.io", "ingresses", NS, name)
    return str(ingress["spec"]["rules"][0]["host"]) if ingress else None


async def _all_seen(api: KubeApi, wanted: set[Grant]) -> bool:
    return wanted <= issued(api)
