"""Embedded mode's adapters for the pipeline's ports: hosts from the spec, IPs from settings, a zone sink."""

from __future__ import annotations

import ipaddress
import logging
from collections import defaultdict
from collections.abc import Sequence

from app.domain.endpoint import Endpoint
from app.domain.gslb import EXPOSED_IPS_ANNOTATION, Gslb, Server, hosts_and_services
from app.domain.plan import plan
from app.domain.zones import ZoneConfig, zone_for
from app.providers.base import Provider

log = logging.getLogger("pygslb.embedded")


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

    Each Gslb owns its records, so one never deletes another's. Planning against our own last
    publication keeps a reconcile O(its own records) however large the zone is; if the provider
    refuses a change set (it no longer holds what we think), the sink re-reads the provider once and
    plans again. The state is rebuilt at start by reconciling every Gslb (the built-in zone lives in
    memory anyway).
    """

    def __init__(self, provider: Provider, zones: list[ZoneConfig]) -> None:
        self.provider = provider
        self.zones = zones
        self._published: dict[tuple[str, str, str], dict[str, list[Endpoint]]] = {}

    def _by_zone(self, endpoints: Sequence[Endpoint]) -> dict[str, list[Endpoint]]:
        by_zone: dict[str, list[Endpoint]] = defaultdict(list)
        for endpoint in endpoints:
            zone = zone_for(endpoint.dns_name, self.zones)
            if zone is None:
                raise ValueError(f"record {endpoint.dns_name} is outside every load-balanced zone")
            by_zone[zone.load_balanced_zone].append(endpoint)
        return by_zone

    async def publish(self, gslb: Gslb, endpoints: Sequence[Endpoint]) -> list[Endpoint]:
        owner = (gslb.group, gslb.namespace, gslb.name)
        desired = self._by_zone(self.provider.adjust(list(endpoints)))
        await self._converge(owner, desired)
        return [e for zone in sorted(desired) for e in desired[zone]]

    async def withdraw(self, namespace: str, name: str, group: str) -> None:
        await self._converge((group, namespace, name), {})

    async def _converge(self, owner: tuple[str, str, str], desired: dict[str, list[Endpoint]]) -> None:
        before = self._published.get(owner, {})
        for zone in sorted(set(desired) | set(before)):
            wanted = desired.get(zone, [])
            changes = plan(before.get(zone, []), wanted)
            if not changes.has_changes:
                continue
            try:
                await self.provider.apply(zone, changes)
            except Exception:
                # Someone else changed the zone under us: plan once against what it really holds.
                keys = {e.key for e in before.get(zone, [])} | {e.key for e in wanted}
                held = [e for e in await self.provider.records(zone) if e.key in keys]
                changes = plan(held, wanted)
                if changes.has_changes:
                    await self.provider.apply(zone, changes)
        if desired:
            self._published[owner] = {zone: list(eps) for zone, eps in desired.items()}
        else:
            self._published.pop(owner, None)
