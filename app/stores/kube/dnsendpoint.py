"""The application DNSEndpoint exactly as k8gb writes it (k8gb.md §4.4, applicationDNSEndpoint.go).

One `externaldns.k8s.io/v1alpha1` DNSEndpoint per Gslb: same name and namespace, the Gslb as
controller owner, labels and annotations `k8gb.io/dnstype: local` and `k8gb.absa.oss/dnstype: local`
(k8gb's CoreDNS serves those; ExternalDNS only picks `extdns`), and `spec.endpoints` with ExternalDNS's
field order: dnsName, targets, recordType, recordTTL (omitted when 0), labels (sorted, omitted when
empty). An existing object gets its spec, labels and annotations overwritten, as k8gb's
`saveDNSEndpoint` does, and the Gslb as its controller: a reference to it is renewed (created again, it
has a new uid) and one nobody controls, such as one an Orphan delete kept, is adopted (k8gb leaves that
ownerless, so the Gslb's next delete would leave its records served). Other references are left alone.
`publish` answers what the API server now holds, read back from its reply (k8gb reads the object back
for `healthyRecords`).
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Sequence

from app.domain.endpoint import Endpoint
from app.domain.gslb import Gslb
from app.stores.kube.cached import ObjectCache
from app.stores.kube.client import DNS_ENDPOINT, KubeApiError, KubeClient, Obj
from app.stores.kube.events import RECONCILE_ERROR, KubeEvents
from app.stores.kube.ownwrites import OwnWrites
from app.stores.kube.refs import ResolveError
from app.stores.kube.servers import claimed_refs, gslb_object_ref, gslb_ref

log = logging.getLogger("pygslb.kube.dnsendpoint")

DNSTYPE_LOCAL = {"k8gb.absa.oss/dnstype": "local", "k8gb.io/dnstype": "local"}
WRITE_ATTEMPTS = 3


def endpoint_wire(endpoint: Endpoint) -> Obj:
    out: Obj = {
        "dnsName": endpoint.dns_name,
        "targets": list(endpoint.targets),
        "recordType": endpoint.record_type,
    }
    if endpoint.ttl:
        out["recordTTL"] = endpoint.ttl
    if endpoint.labels:
        out["labels"] = dict(sorted(endpoint.labels))
    return out


def endpoint_from_wire(wire: Obj) -> Endpoint:
    return Endpoint(
        dns_name=str(wire.get("dnsName") or ""),
        targets=tuple(wire.get("targets") or ()),
        record_type=str(wire.get("recordType") or "A"),
        ttl=int(wire.get("recordTTL") or 0),
        labels=tuple(sorted((wire.get("labels") or {}).items())),
    )


def endpoints_of(dnsendpoint: Obj) -> list[Endpoint]:
    return [endpoint_from_wire(e) for e in (dnsendpoint.get("spec") or {}).get("endpoints") or []]


def application_dnsendpoint(gslb: Gslb, endpoints: Sequence[Endpoint]) -> Obj:
    """The object k8gb's `GetDNSEndpoint` builds, with the owner reference `SetControllerReference` adds."""
    return {  # keys in the order k8gb's Go client serialises them
        "kind": DNS_ENDPOINT.kind,
        "apiVersion": DNS_ENDPOINT.api_version,
        "metadata": {
            "name": gslb.name,
            "namespace": gslb.namespace,
            "labels": dict(DNSTYPE_LOCAL),
            "annotations": dict(DNSTYPE_LOCAL),
            "ownerReferences": [gslb_ref(gslb)],
        },
        "spec": {"endpoints": [endpoint_wire(e) for e in endpoints]} if endpoints else {},
    }


def _managed(obj: Obj) -> tuple[object, object, object]:
    """What a write would change. The order of the endpoints does not count: k8gb's follows Go's map
    order (random), so a DNSEndpoint k8gb wrote is not rewritten only to reorder it."""
    meta = obj.get("metadata") or {}
    spec = dict(obj.get("spec") or {})
    endpoints = spec.get("endpoints")
    if isinstance(endpoints, list) and all(isinstance(e, dict) for e in endpoints):
        spec["endpoints"] = sorted(endpoints, key=lambda e: json.dumps(e, sort_keys=True))
    return (spec, meta.get("labels") or {}, meta.get("annotations") or {})


class DnsEndpointSink:
    """`RecordSink` for kubernetes mode."""

    def __init__(
        self,
        client: KubeClient,
        *,
        own_writes: OwnWrites | None = None,
        dnsendpoints: ObjectCache | None = None,
        events: KubeEvents | None = None,
    ) -> None:
        self.client = client
        self.own_writes = own_writes or OwnWrites()
        self.dnsendpoints = dnsendpoints  # reads from the DNSEndpoint informer; None: every read is a GET
        self.events = (
            events  # a DNSEndpoint another Gslb controls is a ReconcileError event, as in servers.py
        )

    async def _read(self, namespace: str, name: str, *, fresh: bool) -> Obj | None:
        if self.dnsendpoints is not None and not fresh:
            return await self.dnsendpoints.get(namespace, name)
        return await self.client.get_or_none(DNS_ENDPOINT, namespace, name)

    def _wrote(self, obj: Obj) -> list[Endpoint]:
        self.own_writes.record(obj)
        if self.dnsendpoints is not None:
            self.dnsendpoints.wrote(obj)
        return endpoints_of(obj)

    async def publish(self, gslb: Gslb, endpoints: Sequence[Endpoint]) -> list[Endpoint]:
        """Create or overwrite; the first attempt reads from the cache, a retry after a 409 from the API."""
        desired = application_dnsendpoint(gslb, endpoints)
        ns, name = gslb.namespace, gslb.name
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            current = await self._read(ns, name, fresh=attempt > 1)
            if current is None:
                try:
                    with self.own_writes.writing(DNS_ENDPOINT.kind, ns, name):
                        return self._wrote(await self.client.create(DNS_ENDPOINT, ns, desired))
                except KubeApiError as create_exc:
                    if create_exc.status == 409 and attempt < WRITE_ATTEMPTS:
                        continue  # created meanwhile: overwrite it
                    raise
            try:
                refs = claimed_refs({"kind": DNS_ENDPOINT.kind, **current}, gslb, adopt=True)
            except ResolveError as exc:
                if self.events is not None:
                    await self.events.warning(gslb_object_ref(gslb), RECONCILE_ERROR, str(exc))
                raise
            if _managed(current) == _managed(desired) and refs is None:
                return endpoints_of(current)
            body = copy.deepcopy(current)
            body["spec"] = desired["spec"]
            body["metadata"]["labels"] = desired["metadata"]["labels"]
            body["metadata"]["annotations"] = desired["metadata"]["annotations"]
            if refs is not None:
                body["metadata"]["ownerReferences"] = refs
            try:
                with self.own_writes.writing(DNS_ENDPOINT.kind, ns, name):
                    return self._wrote(await self.client.replace(DNS_ENDPOINT, ns, name, body))
            except KubeApiError as exc:
                if exc.status == 409 and attempt < WRITE_ATTEMPTS:
                    continue
                raise
        raise AssertionError("unreachable: every attempt returns or raises")  # pragma: no cover

    async def withdraw(self, namespace: str, name: str, group: str, uid: str | None) -> None:
        """Delete the DNSEndpoint the deleted Gslb `uid` still controls now, rather than when the garbage
        collector gets to it. Any other is left alone: one its twin in the other API group controls
        (legacy migration), one the Gslb's Orphan delete keeps (the collector removed, or is about to
        remove, its reference: `uid` is None then) and whatever a Gslb created since has taken over."""
        if uid is None:
            return
        current = await self._read(namespace, name, fresh=True)  # rare; exactness over speed
        if current is None:
            return
        owner = next(
            (r for r in current["metadata"].get("ownerReferences") or [] if r.get("controller")), None
        )
        if owner is None or owner.get("uid") != uid:
            return
        try:  # only as read: a Gslb created meanwhile may have taken it over (else the collector's)
            version = current["metadata"].get("resourceVersion")
            await self.client.delete(DNS_ENDPOINT, namespace, name, resource_version=version)
        except KubeApiError as exc:
            if exc.status == 409:
                return
            if exc.status != 404:
                raise
        if self.dnsendpoints is not None:
            self.dnsendpoints.forget(namespace, name)
