"""Embedded mode's adapters for the pipeline's ports: hosts from the spec, IPs from settings, a zone sink."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections import defaultdict
from collections.abc import Sequence

from app.domain.endpoint import Endpoint, RecordKey, merge_endpoints
from app.domain.gslb import EXPOSED_IPS_ANNOTATION, Gslb, Server, hosts_and_services
from app.domain.plan import plan
from app.domain.zones import ZoneConfig, zone_for
from app.providers.base import Provider

log = logging.getLogger("pygslb.embedded")

Owner = tuple[str, str, str]  # namespace, name, group: the order merged records take


class SpecServerSource:
    """Hosts of the embedded `spec.ingress`; a `resourceRef` needs a cluster to resolve."""

    async def servers(self, gslb: Gslb) -> list[Server]:
        if gslb.spec.resource_ref is not None and not gslb.spec.resource_ref.is_empty():
            if not gslb.spec.ingress or not gslb.spec.ingress.rules:
                raise ValueError("spec.resourceRef needs kubernetes mode; embedded mode reads spec.ingress")
        return hosts_and_services(gslb)


class StaticExposedIps:
    """k8gb's precedence without a cluster: the Gslb's annotation, then CLUSTER_EXPOSED_IPS."""

    def __init__(self, cluster_exposed_ips: Sequence[str]) -> None:
        self.cluster_exposed_ips = list(cluster_exposed_ips)

    async def exposed_ips(self, gslb: Gslb) -> list[str]:
        raw = (gslb.metadata.annotations or {}).get(EXPOSED_IPS_ANNOTATION, "")
        if raw.strip():
            ips: list[str] = []
            for item in (i.strip() for i in raw.split(",")):
                try:
                    ips.append(str(ipaddress.IPv4Address(item)))
                except ValueError:
                    log.warning(
                        "%s/%s: ignoring invalid IPv4 %r in %s",
                        gslb.namespace,
                        gslb.name,
                        item,
                        EXPOSED_IPS_ANNOTATION,
                    )
            if ips:
                return list(dict.fromkeys(ips))
        return list(self.cluster_exposed_ips)


class ZoneSink:
    """Plans a Gslb's records against what it last published and applies the difference.

    Planning against our own last publications keeps a reconcile O(its own records) however large the
    zone is. Several Gslbs may claim one host (a Gslb and its twin in the other API group while
    migrating, say): the zone serves their records as one, merged in (namespace, name, group) order
    as k8gb's CoreDNS serves several DNSEndpoints' (`merge_endpoints`), and a Gslb leaving takes away
    only what the others do not also publish. If the provider refuses a change set (it no longer
    holds what we think), the sink re-reads the provider once and plans again. The state is rebuilt at
    start by reconciling every Gslb (the built-in zone lives in memory anyway).
    """

    def __init__(self, provider: Provider, zones: list[ZoneConfig]) -> None:
        self.provider = provider
        self.zones = zones
        self._published: dict[Owner, dict[str, dict[RecordKey, Endpoint]]] = {}
        self._holders: dict[tuple[str, RecordKey], set[Owner]] = defaultdict(set)
        self._lock = asyncio.Lock()

    def _by_zone(self, endpoints: Sequence[Endpoint]) -> dict[str, dict[RecordKey, Endpoint]]:
        by_zone: dict[str, dict[RecordKey, Endpoint]] = defaultdict(dict)
        for endpoint in endpoints:
            zone = zone_for(endpoint.dns_name, self.zones)
            if zone is None:
                raise ValueError(f"record {endpoint.dns_name} is outside every load-balanced zone")
            by_zone[zone.load_balanced_zone][endpoint.key] = endpoint
        return by_zone

    async def publish(self, gslb: Gslb, endpoints: Sequence[Endpoint]) -> list[Endpoint]:
        owner = (gslb.namespace, gslb.name, gslb.group)
        desired = self._by_zone(self.provider.adjust(list(endpoints)))
        await self._converge(owner, desired)
        return [e for zone in sorted(desired) for e in desired[zone].values()]

    async def withdraw(self, namespace: str, name: str, group: str, uid: str | None) -> None:
        """Always: a Gslb's records here are no object of their own that a delete could orphan."""
        await self._converge((namespace, name, group), {})

    def _served(self, zone: str, key: RecordKey, owner: Owner, mine: Endpoint | None) -> Endpoint | None:
        """The record the zone serves for `key` when `owner` publishes `mine` and the others theirs."""
        holders = self._holders.get((zone, key), set()) | {owner}
        parts = (
            mine if holder == owner else self._published[holder][zone][key] for holder in sorted(holders)
        )
        return merge_endpoints(part for part in parts if part is not None)

    async def _converge(self, owner: Owner, desired: dict[str, dict[RecordKey, Endpoint]]) -> None:
        """One owner at a time (`_lock`): two owners of one host reconciling at once would each plan the
        merged record without the other's part. Each zone's bookkeeping follows its own apply, so a zone
        that fails leaves the ones done before it recorded as done."""
        async with self._lock:
            for zone in sorted(set(desired) | set(self._published.get(owner, {}))):
                await self._converge_zone(owner, zone, desired.get(zone, {}))

    async def _converge_zone(self, owner: Owner, zone: str, mine: dict[RecordKey, Endpoint]) -> None:
        mine_before = self._published.get(owner, {}).get(zone, {})
        keys = sorted(mine_before.keys() | mine.keys())
        served = [self._served(zone, k, owner, mine_before.get(k)) for k in keys]
        wanted = [self._served(zone, k, owner, mine.get(k)) for k in keys]
        new = [e for e in wanted if e is not None]
        changes = plan([e for e in served if e is not None], new)
        if changes.has_changes:
            try:
                await self.provider.apply(zone, changes)
            except Exception:
                # Someone else changed the zone under us: plan once against what it really holds.
                held = [e for e in await self.provider.records(zone) if e.key in set(keys)]
                changes = plan(held, new)
                if changes.has_changes:
                    await self.provider.apply(zone, changes)
        for key in mine_before.keys() - mine.keys():
            holders = self._holders[(zone, key)]
            holders.discard(owner)
            if not holders:
                del self._holders[(zone, key)]
        for key in mine:
            self._holders[(zone, key)].add(owner)
        zones = self._published.setdefault(owner, {})
        if mine:
            zones[zone] = mine
        else:
            zones.pop(zone, None)
            if not zones:
                del self._published[owner]
