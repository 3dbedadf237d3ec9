"""k8gb's secondary watches as a feed of Gslb keys (k8gb.md §4.3, `gslb_controller_setup.go`).

- an owned Ingress or DNSEndpoint (controller ownerReference of kind Gslb) → its Gslb, unless the
  event is our own write (`OwnWrites`): a user's edit, a deletion or an ingress controller filling in
  the load balancer status reconciles, our own writes do not loop;
- a Service's EndpointSlice verdict changing → every Gslb whose `status.servers[].services[]` names
  that Service (k8gb maps the slice's `kubernetes.io/service-name` the same way);
- an Ingress annotated `k8gb.io/strategy` → the annotation workflow (one run at a time per Ingress,
  a change arriving meanwhile runs it once more).
Keys go to `on_key(key, reason)`, typically the controller's work queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable

from app.domain.gslb import GROUPS
from app.stores.base import ObjectKey
from app.stores.kube.client import DNS_ENDPOINT, INGRESS, KubeClient, Obj
from app.stores.kube.health import EndpointSliceHealth
from app.stores.kube.ingress_workflow import IngressWorkflow, is_annotated
from app.stores.kube.ownwrites import OwnWrites
from app.stores.kube.store import KubeGslbStore
from app.stores.kube.watch import EventType, Informer, ObjKey, ResourceEvent, object_key

log = logging.getLogger("pygslb.kube.triggers")

OnKey = Callable[[ObjectKey, str], object]


def owner_gslb(obj: Obj) -> ObjectKey | None:
    """The Gslb that controls `obj`, from its ownerReferences."""
    meta = obj.get("metadata") or {}
    for ref in meta.get("ownerReferences") or []:
        group = str(ref.get("apiVersion") or "").split("/")[0]
        if ref.get("kind") == "Gslb" and ref.get("controller") and group in GROUPS:
            return ObjectKey(group, meta.get("namespace") or "default", str(ref.get("name") or ""))
    return None


class GslbTriggers:
    def __init__(
        self,
        client: KubeClient,
        *,
        store: KubeGslbStore,
        on_key: OnKey,
        health: EndpointSliceHealth | None = None,
        workflow: IngressWorkflow | None = None,
        own_writes: OwnWrites | None = None,
        namespace: str | None = None,
        ingresses: Informer | None = None,
        dnsendpoints: Informer | None = None,
    ) -> None:
        """`ingresses` and `dnsendpoints`: informers shared with the reconciler's cached reads."""
        self.store = store
        self.on_key = on_key
        self.health = health
        self.workflow = workflow
        self.own_writes = own_writes or OwnWrites()
        self.ingresses = ingresses or Informer(client, INGRESS, namespace=namespace)
        self.dnsendpoints = dnsendpoints or Informer(client, DNS_ENDPOINT, namespace=namespace)
        self.ingresses.add_handler(self._on_ingress)
        self.dnsendpoints.add_handler(self._on_dnsendpoint)
        # Service -> the Gslbs whose status names it, kept from the Gslb informers' events (seeded
        # from their caches: they may have listed already), so a Service change costs O(its Gslbs).
        self._backed_by: dict[ObjKey, set[ObjectKey]] = {}
        self._services_of: dict[ObjectKey, frozenset[ObjKey]] = {}
        for group, informer in store.informers.items():
            for obj in informer.items():
                self._index_gslb(group, obj, deleted=False)
            informer.add_handler(functools.partial(self._on_gslb, group))
        if health is not None:
            health.on_change(self._on_service)
        self._running: dict[ObjKey, asyncio.Task[None]] = {}
        self._again: set[ObjKey] = set()

    async def start(self) -> None:
        await asyncio.gather(self.ingresses.start(), self.dnsendpoints.start())

    async def stop(self) -> None:
        await asyncio.gather(self.ingresses.stop(), self.dnsendpoints.stop())
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._running.clear()

    async def idle(self) -> None:
        """Wait until no annotation workflow run is in flight (tests, orderly shutdown)."""
        while self._running:
            await asyncio.gather(*self._running.values(), return_exceptions=True)

    # --- mappers ---------------------------------------------------------------------------------

    def _owned(self, event: ResourceEvent, reason: str) -> bool:
        key = owner_gslb(event.object)
        if key is None:
            return False
        if event.type == EventType.DELETED:
            self.on_key(key, reason)
        else:
            self.own_writes.check(event.object, lambda: self.on_key(key, reason))
        return True

    def _on_ingress(self, event: ResourceEvent) -> None:
        if self._owned(event, "owned-ingress"):
            return
        if self.workflow is not None and event.type != EventType.DELETED and is_annotated(event.object):
            self._run_workflow(event.object)

    def _on_dnsendpoint(self, event: ResourceEvent) -> None:
        self._owned(event, "owned-dnsendpoint")

    def _on_service(self, namespace: str, name: str) -> None:
        for key in sorted(self._backed_by.get((namespace, name), ())):
            self.on_key(key, "endpointslice")

    def _on_gslb(self, group: str, event: ResourceEvent) -> None:
        self._index_gslb(group, event.object, deleted=event.type == EventType.DELETED)

    def _index_gslb(self, group: str, obj: Obj, *, deleted: bool) -> None:
        namespace, name = object_key(obj)
        key = ObjectKey(group, namespace, name)
        services: frozenset[ObjKey] = frozenset()
        if not deleted:
            servers = ((obj.get("status") or {}).get("servers")) or []
            services = frozenset(
                (str(svc.get("namespace") or namespace), str(svc.get("name") or ""))
                for server in servers
                if isinstance(server, dict)
                for svc in server.get("services") or []
                if isinstance(svc, dict) and svc.get("name")
            )
        before = self._services_of.pop(key, frozenset())
        if services:
            self._services_of[key] = services
        for service in before - services:
            backed = self._backed_by.get(service)
            if backed is not None:
                backed.discard(key)
                if not backed:
                    del self._backed_by[service]
        for service in services - before:
            self._backed_by.setdefault(service, set()).add(key)

    # --- annotation workflow, serialised per Ingress -----------------------------------------------

    def _run_workflow(self, ingress: Obj) -> None:
        key = object_key(ingress)
        if key in self._running:
            self._again.add(key)
            return
        self._running[key] = asyncio.get_running_loop().create_task(self._workflow_loop(key, ingress))

    async def _workflow_loop(self, key: ObjKey, ingress: Obj) -> None:
        assert self.workflow is not None
        try:
            while True:
                self._again.discard(key)
                try:
                    await self.workflow.handle(ingress)
                except Exception:  # the next event or resync retries; the informer must go on
                    log.exception("annotation workflow failed for Ingress %s/%s", *key)
                if key not in self._again:
                    return
                ingress = self.ingresses.get(*key) or ingress
        finally:
            self._running.pop(key, None)
