"""Hosts and backing Services of a Gslb, and where they are exposed (k8gb.md §1.2, §4.3 steps 5-7).

Embedded mode (`spec.ingress`, no `resourceRef`): the Gslb owns an Ingress of the same name, labelled
`app.k8gb.io/managed-by=gslb`, with the Gslb as controller owner; it is created, or its spec updated
when it differs (a conflict leaves it for the next round, as k8gb does). Referenced mode: the object
named by `resourceRef.name` (namespace defaulting to the Gslb's), or the one object in the Gslb's
namespace matching the label selector; anything but exactly one is an error. What each kind says is
`refs`' business; other kinds are refused with k8gb's message. Each failure is reported as a Warning
`ReconcileError` on the Gslb.
"""

from __future__ import annotations

import copy
import logging

from app.domain.gslb import Gslb, IngressSpec, ResourceRef, Server
from app.stores.kube.cached import ObjectCache
from app.stores.kube.client import INGRESS, SERVICE, KubeApiError, KubeClient, Obj, Resource
from app.stores.kube.events import RECONCILE_ERROR, KubeEvents, ObjectRef
from app.stores.kube.ownwrites import OwnWrites
from app.stores.kube.refs import (
    GATEWAY,
    REFERABLE,
    Exposure,
    ResolveError,
    gateway_addresses,
    gateway_of_virtual_service,
    is_route,
    is_virtual_service,
    istio_gateway,
    label_selector,
    lb_addresses,
    load_balancer,
    parent_gateway,
    servers_of_ingress,
    servers_of_route,
    servers_of_service,
    servers_of_virtual_service,
    service_selector,
)

log = logging.getLogger("pygslb.kube.servers")

#: Resolutions held between a reconcile's servers step and its exposed-IP step (one per reconcile in
#: flight); more means steps that failed in between, and the lot is dropped.
HANDOFF_LIMIT = 1024

MANAGED_BY_LABEL = "app.k8gb.io/managed-by"


def controller_ref(api_version: str, kind: str, name: str, uid: str) -> Obj:
    """An ownerReference as controller-runtime's SetControllerReference writes it."""
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def gslb_ref(gslb: Gslb) -> Obj:
    return controller_ref(gslb.api_version, "Gslb", gslb.name, gslb.metadata.uid or "")


def _group(api_version: object) -> str:
    group, _, version = str(api_version or "").rpartition("/")
    return group if version else ""


def claimed_refs(obj: Obj, gslb: Gslb, *, adopt: bool) -> list[Obj] | None:
    """The ownerReferences that make `gslb` the controller owner of `obj`, or None when they already do,
    judged as controller-runtime's SetControllerReference judges owners: by group, kind and name.

    A reference to this Gslb is renewed (deleted and created again, it has a new uid); an object with no
    controller is adopted when `adopt`; one another owner controls (such as this Gslb's twin in the
    other API group) is refused with ResolveError, rather than both overwriting it in turn.
    """
    mine = gslb_ref(gslb)
    meta = obj.get("metadata") or {}
    refs: list[Obj] = meta.get("ownerReferences") or []
    for index, ref in enumerate(refs):
        if not ref.get("controller"):
            continue
        owner = (ref.get("kind"), ref.get("name"), _group(ref.get("apiVersion")))
        if owner != (mine["kind"], mine["name"], _group(mine["apiVersion"])):
            twin = owner[:2] == (mine["kind"], mine["name"])  # the same Gslb in the other API group
            raise ResolveError(
                f"{obj.get('kind', 'object')} {meta.get('namespace')}/{meta.get('name')} is controlled by "
                f"{ref.get('kind')} {ref.get('name')} of {ref.get('apiVersion')}, not by this Gslb: "
                "delete one of the two, or rename one"
                + (
                    "; for the same Gslb in both API groups, label the k8gb.absa.oss one "
                    "k8gb.io/migration-requested=true to migrate it"
                    if twin
                    else ""
                )
            )
        renewed = {**ref, **mine}
        return None if renewed == ref else [*refs[:index], renewed, *refs[index + 1 :]]
    return [*refs, mine] if adopt else None


def gslb_object_ref(gslb: Gslb) -> ObjectRef:
    meta = gslb.metadata
    return ObjectRef(
        gslb.api_version, "Gslb", gslb.namespace, gslb.name, meta.uid or "", meta.resource_version or ""
    )


def ingress_spec_wire(spec: IngressSpec) -> Obj:
    """networking.k8s.io/v1 IngressSpec from k8gb's copy (which names `defaultBackend` `backend`)."""
    wire = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    if "backend" in wire:
        wire["defaultBackend"] = wire.pop("backend")
    return wire


def embedded_ingress(gslb: Gslb) -> Obj:
    assert gslb.spec.ingress is not None
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": gslb.name,
            "namespace": gslb.namespace,
            "labels": {MANAGED_BY_LABEL: "gslb"},
            "ownerReferences": [gslb_ref(gslb)],
        },
        "spec": ingress_spec_wire(gslb.spec.ingress),
    }


def _is_empty(spec: IngressSpec | None) -> bool:
    return spec is None or not (spec.rules or spec.backend or spec.tls or spec.ingress_class_name)


class KubeServerSource:
    """`ServerSource` for kubernetes mode; `resolve` is shared with the exposed-IP source."""

    def __init__(
        self,
        client: KubeClient,
        *,
        events: KubeEvents | None = None,
        own_writes: OwnWrites | None = None,
        ingresses: ObjectCache | None = None,
    ) -> None:
        self.client = client
        self.events = events
        self.own_writes = own_writes or OwnWrites()
        self.ingresses = ingresses  # reads from the Ingress informer; None: every read is a GET
        self._handoff: dict[tuple[str, str, str], tuple[str | None, Exposure]] = {}

    async def _read(self, namespace: str, name: str) -> Obj | None:
        if self.ingresses is not None:
            return await self.ingresses.get(namespace, name)
        return await self.client.get_or_none(INGRESS, namespace, name)

    def _wrote(self, obj: Obj) -> Obj:
        self.own_writes.record(obj)
        if self.ingresses is not None:
            self.ingresses.wrote(obj)
        return obj

    async def servers(self, gslb: Gslb) -> list[Server]:
        exposure = await self.resolve(gslb)
        if len(self._handoff) >= HANDOFF_LIMIT:  # the exposed-IP step takes each; a crash may not
            self._handoff.clear()
        self._handoff[_handoff_key(gslb)] = (gslb.metadata.resource_version, exposure)
        return exposure.servers

    def forget(self, gslb: Gslb) -> None:
        """Drop what `servers` held for the exposed-IP step (which may not have needed it)."""
        self._handoff.pop(_handoff_key(gslb), None)

    async def exposure_for(self, gslb: Gslb) -> Exposure:
        """What `servers` resolved for this same version of the Gslb moments ago (the reconcile's
        exposed-IP step follows its servers step), else a fresh resolution: the referenced objects
        are read once per reconcile, and hosts and addresses come from the same reading."""
        held = self._handoff.pop(_handoff_key(gslb), None)
        if held is not None and held[0] == gslb.metadata.resource_version:
            return held[1]
        return await self.resolve(gslb)

    async def resolve(self, gslb: Gslb) -> Exposure:
        """The Gslb's hosts and their load balancer addresses, from its Ingress (embedded or
        referenced), LoadBalancer Service or Gateway API route; shared with the exposed-IP source."""
        try:
            return await self._resolve(gslb)
        except (ResolveError, KubeApiError) as exc:  # the API refusing a lookup (403, no such CRD) too
            if self.events is not None:
                await self.events.warning(gslb_object_ref(gslb), RECONCILE_ERROR, str(exc))
            raise

    async def _resolve(self, gslb: Gslb) -> Exposure:
        ref = gslb.spec.resource_ref
        if ref is None or ref.is_empty():
            if _is_empty(gslb.spec.ingress):
                raise ResolveError("exactly 1 Ingress resource expected but none was found")
            ingress = await self._ensure_embedded(gslb)
            return Exposure(servers_of_ingress(ingress), lb_addresses(ingress))
        resource, found = await self._referenced(gslb, ref)
        if resource is SERVICE:
            service = load_balancer(found)
            return Exposure(servers_of_service(gslb, service), lb_addresses(service))
        if len(found) != 1:
            if resource is INGRESS:
                count = "none was" if not found else f"{len(found)} were"
                raise ResolveError(f"exactly 1 Ingress resource expected but {count} found")
            raise ResolveError(f"exactly 1 {resource.kind} resource expected but {len(found)} were found")
        if is_route(resource):
            route = found[0]  # its Gateway first, as k8gb checks it
            namespace, name = parent_gateway(route)
            gateway = await self.client.get_or_none(GATEWAY, namespace, name)
            if gateway is None:
                raise ResolveError(f"Gateway {namespace}/{name} of {resource.kind} {_name(route)} not found")
            return Exposure(servers_of_route(gslb, resource.kind, route), gateway_addresses(gateway))
        if is_virtual_service(resource):
            return await self._virtual_service(resource, found[0])
        return Exposure(servers_of_ingress(found[0]), lb_addresses(found[0]))

    async def _virtual_service(self, resource: Resource, virtual_service: Obj) -> Exposure:
        """Its Gateway, then the one Service that Gateway's selector picks (anywhere), as k8gb reads them."""
        namespace, name = gateway_of_virtual_service(virtual_service)
        gateway = await self.client.get_or_none(istio_gateway(resource), namespace, name)
        if gateway is None:
            raise ResolveError(
                f"Gateway {namespace}/{name} of VirtualService {_name(virtual_service)} not found"
            )
        listing = await self.client.list(SERVICE, None, label_selector=service_selector(gateway))
        services = listing.get("items") or []
        if len(services) != 1:
            raise ResolveError(f"exactly 1 Service resource expected but {len(services)} were found")
        return Exposure(servers_of_virtual_service(virtual_service), lb_addresses(services[0]))

    async def _ensure_embedded(self, gslb: Gslb) -> Obj:
        desired = embedded_ingress(gslb)
        ns, name = gslb.namespace, gslb.name
        current = await self._read(ns, name)
        if current is None:
            try:
                with self.own_writes.writing(INGRESS.kind, ns, name):
                    created = self._wrote(await self.client.create(INGRESS, ns, desired))
            except KubeApiError as exc:
                if exc.status != 409:
                    raise
                current = await self.client.get(INGRESS, ns, name)  # the cache lagged behind
            else:
                log.info("created the embedded Ingress %s/%s", ns, name)
                return created
        refs = claimed_refs(current, gslb, adopt=False)  # one nobody controls is updated, not adopted (k8gb)
        if current.get("spec") == desired["spec"] and refs is None:
            return current
        body = copy.deepcopy(current)
        body["spec"] = desired["spec"]
        if refs is not None:
            body["metadata"]["ownerReferences"] = refs
        try:
            with self.own_writes.writing(INGRESS.kind, ns, name):
                return self._wrote(await self.client.replace(INGRESS, ns, name, body))
        except KubeApiError as exc:
            if exc.status != 409:
                raise
            log.info("embedded Ingress %s/%s changed meanwhile; updating next round", ns, name)
            return current

    async def _referenced(self, gslb: Gslb, ref: ResourceRef) -> tuple[Resource, list[Obj]]:
        """The referenced kind and the objects that match the reference (by name: one, or none)."""
        resource = REFERABLE.get((ref.api_version or "", ref.kind or ""))
        if resource is None:
            raise ResolveError(f"APIVersion:{ref.api_version or ''}, Kind:{ref.kind or ''} not supported")
        if ref.name:
            namespace = ref.namespace or gslb.namespace
            if resource is INGRESS:
                named = await self._read(namespace, ref.name)
            else:
                named = await self.client.get_or_none(resource, namespace, ref.name)
            if named is None:
                raise ResolveError(f"referenced {resource.kind} {namespace}/{ref.name} not found")
            return resource, [named]
        if ref.match_labels is None and ref.match_expressions is None:
            # an empty selector (`matchLabels: {}`) is a selector: it matches everything, as in k8gb
            raise ResolveError("neither name nor label selector specified in ResourceRef")
        listing = await self.client.list(resource, gslb.namespace, label_selector=label_selector(ref))
        return resource, listing.get("items") or []


def _handoff_key(gslb: Gslb) -> tuple[str, str, str]:
    return gslb.api_version, gslb.namespace, gslb.name


def _name(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}"
