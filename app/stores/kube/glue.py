"""This cluster's DNS address as the edge's glue A gives it, read from the cluster and followed (k8gb §4.5).

The first rule that applies, chosen once from settings:
1. DNS_EXPOSED_IPS, else CLUSTER_EXPOSED_IPS (`fixed`);
2. DNS_SERVICE_NAME: that Service in POD_NAMESPACE (the chart names its own DNS Service);
3. COREDNS_SERVICE_TYPE=LoadBalancer: the one Service in POD_NAMESPACE labelled
   `app.kubernetes.io/name=coredns` and not `app.kubernetes.io/component=metrics`, k8gb's CoreDNS (none or
   several is an error, as in k8gb);
4. the first Ingress (namespace/name order, any namespace) labelled `k8gb.io/ip-source=true`.
A Service of type ClusterIP gives its `spec.clusterIPs`, any other its `status.loadBalancer.ingress`, and
an Ingress its load balancer status; hostnames are resolved through edge DNS and only IPv4 is kept, as
k8gb does. A rule that finds nothing yet raises `GlueUnknown`: the delegation waits and says why, it
does not fall through to the next rule (which would publish an address the operator did not pick).

Reads come from the informers' caches: Services from the health source's (whose cache keeps, of the
Services in POD_NAMESPACE, the fields read here: `service_fields`), Ingresses from the reconciler's. A
change of what the rule reads calls the `on_change` listeners, the delegation loop's kick, so the glue
follows a load balancer address without polling.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from app.domain.delegation import GlueUnknown
from app.stores.kube.client import Obj
from app.stores.kube.exposed import ExposedIpError, ipv4_only, resolve_addresses
from app.stores.kube.objtable import metadata_only
from app.stores.kube.refs import IP_ADDRESS, lb_addresses
from app.stores.kube.watch import EventType, Informer, ObjKey, ResourceEvent, object_key

log = logging.getLogger("pygslb.kube.glue")

NAME_LABEL = "app.kubernetes.io/name"
COMPONENT_LABEL = "app.kubernetes.io/component"
IP_SOURCE_LABEL = "k8gb.io/ip-source"

FIXED, SERVICE, COREDNS, INGRESS = "settings", "service", "coredns", "ip-source ingress"


def service_fields(namespace: str) -> Callable[[Obj], Obj]:
    """The Services cache's `keep`: what health reads of every Service (its existence), and of those in
    `namespace` also the labels, type, cluster IPs and load balancer status the glue is read from."""
    base = metadata_only()

    def keep(obj: Obj) -> Obj:
        kept = base(obj)
        meta = obj.get("metadata") or {}
        if meta.get("namespace") != namespace:
            return kept
        labels = meta.get("labels") or {}
        kept["metadata"]["labels"] = {k: labels[k] for k in (NAME_LABEL, COMPONENT_LABEL) if k in labels}
        spec = obj.get("spec") or {}
        kept["spec"] = {k: spec[k] for k in ("type", "clusterIP", "clusterIPs") if k in spec}
        kept["status"] = {"loadBalancer": (obj.get("status") or {}).get("loadBalancer") or {}}
        return kept

    return keep


def _is_coredns(service: Obj | None) -> bool:
    labels = ((service or {}).get("metadata") or {}).get("labels") or {}
    return labels.get(NAME_LABEL) == "coredns" and labels.get(COMPONENT_LABEL) != "metrics"


def _is_ip_source(ingress: Obj | None) -> bool:
    return (((ingress or {}).get("metadata") or {}).get("labels") or {}).get(IP_SOURCE_LABEL) == "true"


def _ingress_view(ingress: Obj | None) -> object:
    return (_is_ip_source(ingress), lb_addresses(ingress or {}))


class KubeGlueSource:
    """`GlueSource` for kubernetes mode (see the module docstring)."""

    def __init__(
        self,
        *,
        services: Informer,
        ingresses: Informer,
        namespace: str,
        fixed: Sequence[str] = (),
        service_name: str = "",
        coredns_service_type: str = "ClusterIP",
        edge_servers: Sequence[tuple[str, int]] = (),
        timeout: float = 2.0,
    ) -> None:
        self.services = services
        self.ingresses = ingresses
        self.namespace = namespace
        self.fixed = list(fixed)
        self.service_name = service_name
        self.edge_servers = list(edge_servers)
        self.timeout = timeout
        if self.fixed:
            self.rule = FIXED
        elif service_name:
            self.rule = SERVICE
        elif coredns_service_type == "LoadBalancer":
            self.rule = COREDNS
        else:
            self.rule = INGRESS
        self._keep = service_fields(namespace)
        self._listeners: list[Callable[[], object]] = []
        self._ip_sources: set[ObjKey] = set()  # an index: the Ingress informer holds every Ingress
        if self.rule in (SERVICE, COREDNS):
            services.add_handler(self._on_service)
        elif self.rule == INGRESS:
            for ingress in ingresses.items():  # it may have listed already
                if _is_ip_source(ingress):
                    self._ip_sources.add(object_key(ingress))
            ingresses.add_handler(self._on_ingress)

    @property
    def informer(self) -> Informer | None:
        """The informer the rule reads (None for addresses from settings)."""
        return {SERVICE: self.services, COREDNS: self.services, INGRESS: self.ingresses}.get(self.rule)

    async def start(self) -> None:
        """Start what the rule reads (shared informers: starting one twice is a no-op), first list in."""
        if self.informer is not None:
            await self.informer.start()

    async def stop(self) -> None:
        if self.informer is not None:
            await self.informer.stop()

    def on_change(self, callback: Callable[[], object]) -> None:
        """`callback()` whenever what the glue is read from changes."""
        self._listeners.append(callback)

    def describe(self) -> str:
        """Where the glue comes from, for the start-up log."""
        if self.rule == FIXED:
            return f"{', '.join(self.fixed)} (settings)"
        if self.rule == SERVICE:
            return f"the address of Service {self.namespace}/{self.service_name} (DNS_SERVICE_NAME)"
        if self.rule == COREDNS:
            return (
                f"the address of the CoreDNS Service in {self.namespace} (COREDNS_SERVICE_TYPE=LoadBalancer)"
            )
        return f"the address of the first Ingress labelled {IP_SOURCE_LABEL}=true"

    # --- GlueSource -----------------------------------------------------------------------------------

    async def glue_ips(self) -> list[str]:
        if self.rule == FIXED:
            return list(self.fixed)
        informer = self.informer
        assert informer is not None
        if not informer.synced.is_set():
            raise GlueUnknown(f"the {informer.res.plural} are not listed yet")
        if self.rule == INGRESS:
            what, obj = self._ip_source()
            addresses = lb_addresses(obj)
        else:
            what, obj = self._service() if self.rule == SERVICE else self._coredns()
            addresses = _service_addresses(obj)
        try:
            ips = ipv4_only(await resolve_addresses(addresses, self.edge_servers, self.timeout))
        except ExposedIpError as exc:
            raise GlueUnknown(f"{what}: {exc}") from None
        if ips:
            return ips
        kind = ((obj.get("spec") or {}).get("type") or "ClusterIP") if self.rule != INGRESS else ""
        if kind == "ClusterIP":
            raise GlueUnknown(f"{what} has no IPv4 cluster IP")
        if kind in ("", "LoadBalancer"):
            raise GlueUnknown(f"{what} has no {'IPv4 ' if addresses else ''}load balancer address yet")
        raise GlueUnknown(
            f"{what} is of type {kind}, which gets no load balancer address: make it a LoadBalancer, or "
            "set DNS_EXPOSED_IPS",
            waiting=False,
        )

    def _service(self) -> tuple[str, Obj]:
        what = f"Service {self.namespace}/{self.service_name}"
        found = self.services.get(self.namespace, self.service_name)
        if found is None:
            raise GlueUnknown(f"{what} (DNS_SERVICE_NAME) not found")
        return what, found

    def _coredns(self) -> tuple[str, Obj]:
        found: list[Obj] = []
        for key in sorted(self.services.cache):
            service = self.services.get(*key) if key[0] == self.namespace else None
            if service is not None and _is_coredns(service):
                found.append(service)
        if len(found) != 1:
            names = ", ".join(f"{self.namespace}/{object_key(s)[1]}" for s in found)
            raise GlueUnknown(
                f"COREDNS_SERVICE_TYPE=LoadBalancer: exactly 1 Service labelled {NAME_LABEL}=coredns "
                f"(and not {COMPONENT_LABEL}=metrics) expected in {self.namespace}, found {len(found)}"
                + (f": {names}" if names else ""),
                waiting=False,
            )
        return f"CoreDNS Service {self.namespace}/{object_key(found[0])[1]}", found[0]

    def _ip_source(self) -> tuple[str, Obj]:
        for key in sorted(self._ip_sources):
            ingress = self.ingresses.get(*key)
            if ingress is not None:
                return f"Ingress {key[0]}/{key[1]} ({IP_SOURCE_LABEL}=true)", ingress
        raise GlueUnknown(
            f"no Ingress labelled {IP_SOURCE_LABEL}=true (or set DNS_SERVICE_NAME, "
            "COREDNS_SERVICE_TYPE=LoadBalancer or DNS_EXPOSED_IPS)"
        )

    # --- changes ----------------------------------------------------------------------------------

    def _on_service(self, event: ResourceEvent) -> None:
        namespace, name = object_key(event.object)
        if namespace != self.namespace:
            return
        old = event.old
        if self.rule == SERVICE and name != self.service_name:
            return
        if self.rule == COREDNS and not (_is_coredns(old) or _is_coredns(event.object)):
            return
        if event.type == EventType.DELETED or old is None or self._view(old) != self._view(event.object):
            self._changed(f"Service {namespace}/{name}")

    def _view(self, service: Obj) -> object:
        """What the glue is read from (the cache keeps the old version trimmed: compare trimmed)."""
        kept = self._keep(service)
        return kept["metadata"].get("labels"), kept.get("spec"), kept.get("status")

    def _on_ingress(self, event: ResourceEvent) -> None:
        key = object_key(event.object)
        now = event.object if event.type != EventType.DELETED else None
        was_source = key in self._ip_sources
        if _is_ip_source(now):
            self._ip_sources.add(key)
        else:
            self._ip_sources.discard(key)
        if not (was_source or key in self._ip_sources):
            return
        if now is None or _ingress_view(event.old) != _ingress_view(now):
            self._changed(f"Ingress {key[0]}/{key[1]}")

    def _changed(self, what: str) -> None:
        log.debug("%s changed: the edge delegation's glue is read again", what)
        for listener in list(self._listeners):
            try:
                listener()
            except Exception:
                log.exception("glue listener failed")


def _service_addresses(service: Obj) -> list[tuple[str, str]]:
    """A ClusterIP Service's cluster IPs, any other type's load balancer addresses (k8gb's rule)."""
    spec = service.get("spec") or {}
    if (spec.get("type") or "ClusterIP") == "ClusterIP":
        ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
        return [(IP_ADDRESS, ip) for ip in ips if ip != "None"]
    return lb_addresses(service)
