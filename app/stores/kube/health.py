"""Service readiness from EndpointSlices, as k8gb judges it (k8gb.md §6), answered from watch caches.

A Service that does not exist is `notFound`; one that exists is `healthy` when any endpoint of its
slices (label `kubernetes.io/service-name`) has an address and a `ready` condition that is unset or
true, else `unhealthy`. `state()` never blocks: it reads the caches of two informers (Services and
EndpointSlices). `on_change(callback)` is told `(namespace, name)` whenever a Service's verdict
changes, which is what should trigger the reconcile of the Gslbs it backs.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable

from app.domain.health import ServiceState
from app.stores.kube.client import ENDPOINT_SLICE, SERVICE, KubeClient, Obj
from app.stores.kube.objtable import metadata_only
from app.stores.kube.watch import Informer, ObjKey, ResourceEvent, object_key

log = logging.getLogger("pygslb.kube.health")

SERVICE_NAME_LABEL = "kubernetes.io/service-name"


def slice_ready(endpoint_slice: Obj) -> bool:
    for endpoint in endpoint_slice.get("endpoints") or []:
        ready = (endpoint.get("conditions") or {}).get("ready")
        if endpoint.get("addresses") and ready in (None, True):
            return True
    return False


def _readiness(endpoint_slice: Obj) -> Obj:
    """What the cache keeps of a slice: its service label and whether it has a ready endpoint."""
    meta = endpoint_slice.get("metadata") or {}
    labels = meta.get("labels") or {}
    kept = {k: meta[k] for k in ("namespace", "name", "resourceVersion") if k in meta}
    if SERVICE_NAME_LABEL in labels:
        kept["labels"] = {SERVICE_NAME_LABEL: labels[SERVICE_NAME_LABEL]}
    return {"metadata": kept, "ready": slice_ready(endpoint_slice)}


def _service_of(endpoint_slice: Obj) -> ObjKey | None:
    meta = endpoint_slice.get("metadata") or {}
    name = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
    return (meta.get("namespace") or "", name) if name else None


class EndpointSliceHealth:
    """`HealthSource` for kubernetes mode. `namespace` limits the watches (None: all namespaces)."""

    def __init__(
        self, client: KubeClient, *, namespace: str | None = None, services: Informer | None = None
    ) -> None:
        """`services`: a Services informer shared with another reader (the glue source), else its own."""
        # The caches keep only what `state()` reads: a Service's existence, a slice's readiness.
        self.services = services or Informer(client, SERVICE, namespace=namespace, keep=metadata_only())
        self.slices = Informer(client, ENDPOINT_SLICE, namespace=namespace, keep=_readiness)
        self._slices_of: dict[ObjKey, set[ObjKey]] = defaultdict(set)
        self._states: dict[ObjKey, ServiceState] = {}
        self._listeners: list[Callable[[str, str], object]] = []
        self.services.add_handler(self._on_service)
        self.slices.add_handler(self._on_slice)

    async def start(self) -> None:
        await asyncio.gather(self.services.start(), self.slices.start())

    async def stop(self) -> None:
        await asyncio.gather(self.services.stop(), self.slices.stop())

    def on_change(self, callback: Callable[[str, str], object]) -> None:
        self._listeners.append(callback)

    def state(self, namespace: str, name: str) -> ServiceState:
        if (namespace, name) not in self.services.cache:
            return ServiceState.NOT_FOUND
        for key in self._slices_of.get((namespace, name), ()):
            endpoint_slice = self.slices.get(*key)
            if endpoint_slice is not None and endpoint_slice.get("ready"):
                return ServiceState.HEALTHY
        return ServiceState.UNHEALTHY

    # --- cache maintenance ---------------------------------------------------------------------

    def _on_service(self, event: ResourceEvent) -> None:
        self._recheck(object_key(event.object))

    def _on_slice(self, event: ResourceEvent) -> None:
        key = object_key(event.object)
        before = _service_of(event.old) if event.old is not None else None
        after = _service_of(event.object) if event.type != "DELETED" else None
        if before is not None:
            self._slices_of[before].discard(key)
        if after is not None:
            self._slices_of[after].add(key)
        for service in {s for s in (before, after) if s is not None}:
            if not self._slices_of.get(service):
                self._slices_of.pop(service, None)
            self._recheck(service)

    def _recheck(self, service: ObjKey) -> None:
        namespace, name = service
        now = self.state(namespace, name)
        if self._states.get(service, ServiceState.NOT_FOUND) == now:
            return
        if now == ServiceState.NOT_FOUND:
            self._states.pop(service, None)
        else:
            self._states[service] = now
        for listener in list(self._listeners):
            try:
                listener(namespace, name)
            except Exception:
                log.exception("health listener failed for %s/%s", namespace, name)
