"""What a Gslb's `resourceRef` may name, and what each kind says about the Gslb (k8gb.md §1.2): its
hosts with the Services behind them, and the load balancer addresses where they are exposed.

- an Ingress (`networking.k8s.io/v1`): its rules' hosts, each with its paths' Services; addresses
  from its load balancer status;
- a Service (`v1`, of type LoadBalancer): the one host of the Gslb's `k8gb.io/hostname` annotation,
  backed by the Service itself; addresses from its load balancer status;
- an Istio VirtualService (`networking.istio.io/v1` or `v1beta1`): its `hosts`, each backed by the
  destination of every http, tls and tcp route (in the VirtualService's namespace); addresses from
  the load balancer status of the one Service (in any namespace) selected by its one Istio Gateway
  other than `mesh`;
- a Gateway API route (HTTPRoute, GRPCRoute, TLSRoute, TCPRoute, UDPRoute, in the versions k8gb
  reads): its `hostnames` (TCPRoute and UDPRoute have none: the Gslb's `k8gb.io/hostname`, as for a
  Service), each backed by every rule's `backendRefs` (namespace defaulting to the route's);
  addresses from the status of its one parent Gateway.

Only reading objects here; fetching them is `servers.KubeServerSource`'s job. Messages are k8gb's.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.domain.gslb import Gslb, NamespacedName, ResourceRef, Server
from app.stores.kube.client import INGRESS, SERVICE, Obj, Resource

GATEWAY_API = "gateway.networking.k8s.io"
ISTIO = "networking.istio.io"
GATEWAY = Resource(GATEWAY_API, "v1", "gateways", "Gateway")
HOSTNAME_ANNOTATION = "k8gb.io/hostname"
#: Address types of Gateway API's `status.addresses`; load balancer status entries map onto them.
IP_ADDRESS, HOSTNAME = "IPAddress", "Hostname"


def _route(version: str, kind: str) -> Resource:
    return Resource(GATEWAY_API, version, f"{kind.lower()}s", kind)


#: (apiVersion, kind) a `resourceRef` may name -> the resource (k8gb.md §1.2).
REFERABLE: dict[tuple[str, str], Resource] = {
    (INGRESS.api_version, INGRESS.kind): INGRESS,
    (SERVICE.api_version, SERVICE.kind): SERVICE,
    **{
        (f"{ISTIO}/{version}", "VirtualService"): Resource(
            ISTIO, version, "virtualservices", "VirtualService"
        )
        for version in ("v1", "v1beta1")
    },
    **{
        (f"{GATEWAY_API}/{version}", kind): _route(version, kind)
        for version, kinds in {
            "v1": ("HTTPRoute", "GRPCRoute", "TLSRoute"),
            "v1alpha2": ("TCPRoute", "UDPRoute", "TLSRoute"),
            "v1alpha3": ("TLSRoute",),
        }.items()
        for kind in kinds
    },
}


class ResolveError(Exception):
    """The Gslb's hosts cannot be found: a configuration error, shown as a ReconcileError event."""


@dataclass(frozen=True, slots=True)
class Exposure:
    """What a Gslb's Ingress, Service or route resolves to."""

    servers: list[Server]
    #: (type, value): `IP_ADDRESS` or `HOSTNAME` (resolved through edge DNS), or a type we refuse.
    addresses: list[tuple[str, str]]


def is_route(resource: Resource) -> bool:
    return resource.group == GATEWAY_API


def is_virtual_service(resource: Resource) -> bool:
    return resource.group == ISTIO


def istio_gateway(virtual_service: Resource) -> Resource:
    """Istio's Gateway, in the VirtualService's API version."""
    return Resource(ISTIO, virtual_service.version, "gateways", "Gateway")


def label_selector(ref: ResourceRef) -> str:
    """A LabelSelector (matchLabels + matchExpressions) in the API's query syntax."""
    parts = [f"{k}={v}" for k, v in sorted((ref.match_labels or {}).items())]
    for expr in ref.match_expressions or []:
        values = ",".join(expr.values or [])
        match expr.operator:
            case "In":
                parts.append(f"{expr.key} in ({values})")
            case "NotIn":
                parts.append(f"{expr.key} notin ({values})")
            case "Exists":
                parts.append(expr.key)
            case "DoesNotExist":
                parts.append(f"!{expr.key}")
            case other:
                raise ResolveError(f"unsupported label selector operator {other!r}")
    return ",".join(parts)


def _meta(obj: Obj) -> Obj:
    meta: Obj = obj.get("metadata") or {}
    return meta


def lb_addresses(obj: Obj) -> list[tuple[str, str]]:
    """An Ingress's or Service's `status.loadBalancer.ingress`: `ip`s and `hostname`s, in order."""
    found: list[tuple[str, str]] = []
    for entry in ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
        if entry.get("ip"):
            found.append((IP_ADDRESS, entry["ip"]))
        if entry.get("hostname"):
            found.append((HOSTNAME, entry["hostname"]))
    return found


def servers_of_ingress(ingress: Obj) -> list[Server]:
    """Rule hosts in order, each with the Services of its paths (in the Ingress's namespace)."""
    namespace = _meta(ingress).get("namespace") or "default"
    servers: dict[str, Server] = {}
    for rule in (ingress.get("spec") or {}).get("rules") or []:
        host = rule.get("host")
        if not host:
            continue
        server = servers.setdefault(host, Server(host=host))
        for path in (rule.get("http") or {}).get("paths") or []:
            service = ((path.get("backend") or {}).get("service") or {}).get("name")
            if service:
                ref = NamespacedName(namespace=namespace, name=service)
                if ref not in server.services:
                    server.services.append(ref)
    return list(servers.values())


def load_balancer(found: list[Obj]) -> Obj:
    """The one referenced Service, which must be of type LoadBalancer."""
    if len(found) != 1:
        raise ResolveError(f"exactly 1 Service resource expected but {len(found)} were found")
    service = found[0]
    if (service.get("spec") or {}).get("type") != "LoadBalancer":
        raise ResolveError(f"service {_meta(service).get('name')} is not of type LoadBalancer")
    return service


def servers_of_service(gslb: Gslb, service: Obj) -> list[Server]:
    """The host named by the Gslb's `k8gb.io/hostname`, backed by the referenced Service itself."""
    host = (gslb.metadata.annotations or {}).get(HOSTNAME_ANNOTATION)
    lead = f"LoadBalancer service GSLB {gslb.name}"
    if host is None:
        raise ResolveError(f"{lead} requires {HOSTNAME_ANNOTATION} annotation")
    if not host.strip():
        raise ResolveError(f"{lead} has empty {HOSTNAME_ANNOTATION} annotation")
    meta = _meta(service)
    backing = NamespacedName(namespace=meta.get("namespace") or gslb.namespace, name=meta.get("name") or "")
    return [Server(host=host.strip(), services=[backing])]


#: Route kinds without `spec.hostnames`: their host is the Gslb's `k8gb.io/hostname` annotation.
HOSTLESS_ROUTES = ("TCPRoute", "UDPRoute")


def servers_of_route(gslb: Gslb, kind: str, route: Obj) -> list[Server]:
    """Each hostname, backed by every rule's backendRefs (k8gb keeps them all, in order)."""
    meta, spec = _meta(route), route.get("spec") or {}
    if kind in HOSTLESS_ROUTES:
        host = ((gslb.metadata.annotations or {}).get(HOSTNAME_ANNOTATION) or "").strip()
        if not host:
            raise ResolveError(f"{kind} {meta.get('name')} requires {HOSTNAME_ANNOTATION} annotation")
        hostnames = [host]
    else:
        hostnames = list(dict.fromkeys(h for h in spec.get("hostnames") or [] if h))
    if not hostnames:
        raise ResolveError(f"can't find hosts in route {meta.get('name')}")
    namespace = meta.get("namespace") or "default"
    backends = [
        NamespacedName(namespace=backend.get("namespace") or namespace, name=backend.get("name") or "")
        for rule in spec.get("rules") or []
        for backend in rule.get("backendRefs") or []
    ]
    return [Server(host=host, services=list(backends)) for host in hostnames]


def parent_gateway(route: Obj) -> tuple[str, str]:
    """(namespace, name) of the route's one parent Gateway (parentRefs of another kind are skipped)."""
    meta = _meta(route)
    gateways = [
        (parent.get("namespace") or meta.get("namespace") or "default", parent.get("name") or "")
        for parent in (route.get("spec") or {}).get("parentRefs") or []
        if parent.get("kind") in (None, "Gateway")
    ]
    if len(gateways) != 1:
        raise ResolveError(
            f"expected exactly 1 Gateway to be referenced by the route but {len(gateways)} were found"
        )
    return gateways[0]


def gateway_addresses(gateway: Obj) -> list[tuple[str, str]]:
    """A Gateway's `status.addresses`; an address without a type is an IP address."""
    return [
        (address.get("type") or IP_ADDRESS, address.get("value") or "")
        for address in (gateway.get("status") or {}).get("addresses") or []
    ]


def gateway_of_virtual_service(virtual_service: Obj) -> tuple[str, str]:
    """(namespace, name) of the VirtualService's one Istio Gateway, `mesh` (the sidecars) not
    counted; `name` alone is in the VirtualService's namespace, as Istio reads it."""
    meta = _meta(virtual_service)
    gateways = [g for g in (virtual_service.get("spec") or {}).get("gateways") or [] if g != "mesh"]
    if len(gateways) != 1:
        count = len(gateways)
        raise ResolveError(
            f"expected exactly 1 Gateway to be referenced by the VirtualService but {count} were found"
        )
    namespace, _, name = gateways[0].rpartition("/")
    return namespace or meta.get("namespace") or "default", name


def service_selector(istio_gateway: Obj) -> str:
    """The Gateway's `spec.selector` as a label selector: it picks the Service of its ingress pods."""
    selector = (istio_gateway.get("spec") or {}).get("selector") or {}
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items()))


def servers_of_virtual_service(virtual_service: Obj) -> list[Server]:
    """Each host, backed by the destination of every http, tls and tcp route (k8gb keeps them all)."""
    meta, spec = _meta(virtual_service), virtual_service.get("spec") or {}
    hosts = list(dict.fromkeys(h for h in spec.get("hosts") or [] if h))  # a host listed twice is one
    if not hosts:
        raise ResolveError(f"can't find hosts in VirtualService {meta.get('name')}")
    namespace = meta.get("namespace") or "default"
    backends = [
        NamespacedName(namespace=namespace, name=(route.get("destination") or {}).get("host") or "")
        for kind in ("http", "tls", "tcp")
        for rule in spec.get(kind) or []
        for route in rule.get("route") or []
    ]
    return [Server(host=host, services=list(backends)) for host in hosts]
