"""The built-in DNS zone kept equal to the cluster's DNSEndpoints on every replica (k8gb.md §7, CoreDNS).

What k8gb's CoreDNS `k8s_crd` plugin serves, read the way it reads it: every DNSEndpoint labelled
`k8gb.io/dnstype=local`, in every namespace, watched (list, then watch; `watch.Informer`). Whoever wrote
the object — this replica's leader, another replica, k8gb itself, a person with kubectl — its records
are what the zone holds, so followers answer as well as the leader and a cluster needs no CoreDNS.

Records with the same name and type in several DNSEndpoints are served as one: targets in the order
of the objects (namespace/name) without repeats, labels merged (the first object's value wins), TTL
from the first that sets one, else `default_ttl` (30 s, k8gb's default). A record set with no targets
is not served (NXDOMAIN, as the plugin answers). Names outside every load-balanced zone are skipped.
Weighted and geo answer order follow from the labels (`strategy`, `weight-<geo>-<i>-<w>`), which the
table compiles. Changes are applied in batches per zone (at most one batch per `min_interval`, 50 ms:
the first change after a quiet spell goes at once); a batch the table refuses (one bad record)
is retried record by record so one bad record never hides the others; a bad record is logged and
not served (an update the table refuses withdraws the old version rather than serve a stale one).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from typing import Protocol

from app.domain.endpoint import DEFAULT_TTL, Changes, Endpoint, RecordKey, merge_endpoints
from app.domain.plan import plan
from app.domain.zones import ZoneConfig, zone_for
from app.stores.kube.client import DNS_ENDPOINT, KubeClient, Obj
from app.stores.kube.dnsendpoint import endpoints_of
from app.stores.kube.objtable import metadata_only
from app.stores.kube.watch import EventType, Informer, ObjKey, ResourceEvent, object_key

log = logging.getLogger("pygslb.kube.zonefeed")

LOCAL_SELECTOR = "k8gb.io/dnstype=local"
MIN_INTERVAL = 0.05


class ZoneWriter(Protocol):
    """The provider contract's write half (the built-in ZoneTable is one)."""

    async def apply(self, zone: str, changes: Changes) -> None: ...


class DnsEndpointZoneFeed:
    """Watches local DNSEndpoints and writes their records into `table` (see the module docstring)."""

    def __init__(
        self,
        client: KubeClient,
        table: ZoneWriter,
        zones: list[ZoneConfig],
        *,
        namespace: str | None = None,
        label_selector: str = LOCAL_SELECTOR,
        default_ttl: int = DEFAULT_TTL,
        min_interval: float = MIN_INTERVAL,
        informer: Informer | None = None,
    ) -> None:
        """`informer`: one of every DNSEndpoint already kept for the reconciler, to share instead of a
        second watch; the feed then applies `label_selector` itself (equality terms only)."""
        self.table = table
        self.zones = zones
        self.default_ttl = default_ttl
        self.min_interval = min_interval
        self._owns_informer = informer is None
        self._selected = _equality_terms(label_selector) if informer is not None else None
        # Of its own informer only the version is needed from the cache (replays, re-list diffs): the
        # records are indexed below, so no second copy of every object is kept.
        self.informer = informer or Informer(
            client,
            DNS_ENDPOINT,
            namespace=namespace,
            label_selector=label_selector,
            keep=metadata_only(),
        )
        self.informer.add_handler(self._on_event)
        self._sources: dict[ObjKey, dict[RecordKey, list[Endpoint]]] = {}
        self._holders: dict[RecordKey, set[ObjKey]] = defaultdict(set)
        self._served: dict[RecordKey, Endpoint] = {}
        self._dirty: set[RecordKey] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.applied = 0
        """Record-set changes written to the table so far (creates, updates and deletes)."""

    async def start(self) -> None:
        """Start watching; returns once the first list is in the table."""
        await self.informer.start()
        await self.flush()
        self._task = asyncio.create_task(self._run(), name="dnsendpoint-zone-feed")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._owns_informer:
            await self.informer.stop()

    def served(self) -> dict[RecordKey, Endpoint]:
        """What this feed has put in the table."""
        return dict(self._served)

    # --- events -> dirty record keys -----------------------------------------------------------

    def _on_event(self, event: ResourceEvent) -> None:
        source = object_key(event.object)
        before = self._sources.pop(source, {})
        after: dict[RecordKey, list[Endpoint]] = {}
        if event.type != EventType.DELETED and self._selects(event.object):
            for endpoint in endpoints_of(event.object):
                after.setdefault(endpoint.key, []).append(endpoint)
            self._sources[source] = after
        for key in before.keys() - after.keys():
            self._holders[key].discard(source)
            if not self._holders[key]:
                del self._holders[key]
        for key in after:
            self._holders[key].add(source)
        changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
        if changed:
            self._dirty |= changed
            self._wake.set()

    def _selects(self, obj: Obj) -> bool:
        """On a shared informer, an object the selector does not match counts as absent."""
        if self._selected is None:
            return True
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(labels.get(k) == v for k, v in self._selected)

    def _desired(self, key: RecordKey) -> Endpoint | None:
        holders = sorted(self._holders.get(key, ()))
        return merge_endpoints((e for h in holders for e in self._sources[h][key]), self.default_ttl)

    # --- dirty record keys -> the table ----------------------------------------------------------

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            try:
                await self.flush()
            except Exception:  # the table must keep following the watch; the next change retries
                log.exception("could not update the built-in zone from DNSEndpoints")
            # A change after a quiet spell is applied at once; a stream of changes (a cold start, a
            # resync) is applied in batches, each a single write of the table (one serial bump).
            await asyncio.sleep(self.min_interval)

    async def flush(self) -> None:
        """Write every pending change to the table now."""
        self._wake.clear()
        dirty, self._dirty = self._dirty, set()
        by_zone: dict[str, tuple[list[Endpoint], list[Endpoint]]] = defaultdict(lambda: ([], []))
        for key in sorted(dirty):
            zone = zone_for(key[0], self.zones)
            if zone is None:
                log.debug("%s %s is outside every load-balanced zone; not served", *key)
                continue
            current, desired = by_zone[zone.load_balanced_zone]
            if (held := self._served.get(key)) is not None:
                current.append(held)
            if (wanted := self._desired(key)) is not None:
                desired.append(wanted)
        for zone_name, (current, desired) in by_zone.items():
            await self._apply(zone_name, plan(current, desired))

    async def _apply(self, zone: str, changes: Changes) -> None:
        if not changes.has_changes:
            return
        try:
            await self.table.apply(zone, changes)
        except Exception as exc:
            if changes.count() == 1:
                log.warning("DNSEndpoint record not served: %s", exc)
                if changes.update_old:  # rather nothing than what the DNSEndpoint no longer says
                    await self._apply(zone, Changes(delete=changes.update_old))
                return
            for single in _one_by_one(changes):
                await self._apply(zone, single)
            return
        for endpoint in changes.delete:
            self._served.pop(endpoint.key, None)
        for endpoint in (*changes.create, *changes.update_new):
            self._served[endpoint.key] = endpoint
        self.applied += changes.count()


def _equality_terms(selector: str) -> tuple[tuple[str, str], ...]:
    terms = []
    for term in filter(None, (t.strip() for t in selector.split(","))):
        key, sep, value = term.partition("=")
        if not sep or key.endswith("!"):
            raise ValueError(f"only equality terms can filter a shared informer: {term!r}")
        terms.append((key.strip(), value.lstrip("=").strip()))
    return tuple(terms)


def _one_by_one(changes: Changes) -> list[Changes]:
    singles = [Changes(create=(e,)) for e in changes.create]
    singles += [
        Changes(update_old=(old,), update_new=(new,))
        for old, new in zip(changes.update_old, changes.update_new, strict=True)
    ]
    singles += [Changes(delete=(e,)) for e in changes.delete]
    return singles
