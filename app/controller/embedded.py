"""Embedded mode's adapters for the pipeline's ports: hosts from the spec, IPs from settings, a zone sink."""

from __future__ import annotations

import ipaddress
import logging
from collections import defaultdict
from collections.abc import Sequence

from app.controller.ports import RecordSink
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
    """Plans a Gslb's records against what a provider holds and applies the difference.

    Ownership is tracked per Gslb so one Gslb never deletes another's records; the index is
    rebuilt at start by reconciling every Gslb (the built-in zone lives in memory anyway).
    """

    def __init__(self, provider: Provider, zones: list[ZoneConfig]) -> None:
        self.provider = provider
        self.zones = zones
        self._owned: dict[tuple[str, str, str], set[tuple[str, str]]] = {}

    async def publish(self, gslb: Gslb, endpoints: Sequence[Endpoint]) -> list[Endpoint]:
        owner = (gslb.group, gslb.namespace, gslb.name)
        owned = self._owned.get(owner, set())
        desired_by_zone: dict[str, list[Endpoint]] = defaultdict(list)
        for endpoint in self.provider.adjust(list(endpoints)):
            zone = zone_for(endpoint.dns_name, self.zones)
            if zone is None:
                raise ValueError(f"record {endpoint.dns_name} is outside every load-balanced zone")
            desired_by_zone[zone.load_balanced_zone].append(endpoint)
        touched = set(desired_by_zone) | {z.load_balanced_zone for z in self.zones if owned}
        published: list[Endpoint] = []
        for zone_name in sorted(touched):
            held = await self.provider.records(zone_name)
            mine = [e for e in held if e.key in owned]
            changes = plan(mine, desired_by_zone.get(zone_name, []))
            if changes.has_changes:
                await self.provider.apply(zone_name, changes)
            published.extend(desired_by_zone.get(zone_name, []))
        self._owned[owner] = {e.key for e in published}
        return published

    async def withdraw(self, namespace: str, name: str, group: str) -> None:
        owner = (group, namespace, name)
        owned = self._owned.get(owner)
        if not owned:
            return
        for zone in self.zones:
            held = await self.provider.records(zone.load_balanced_zone)
            mine = [e for e in held if e.key in owned]
            changes = plan(mine, [])
            if changes.has_changes:
                await self.provider.apply(zone.load_balanced_zone, changes)
        self._owned.pop(owner, None)


class TeeSink:
    """Publishes through a primary sink and mirrors the result (e.g. DNSEndpoint, then the built-in zone)."""

    def __init__(self, primary: RecordSink, *mirrors: RecordSink) -> None:
        self.primary = primary
        self.mirrors = mirrors

    async def publish(self, gslb: Gslb, endpoints: Sequence[Endpoint]) -> list[Endpoint]:
        published = await self.primary.publish(gslb, endpoints)
        for mirror in self.mirrors:
            await mirror.publish(gslb, published)
        return published

    async def withdraw(self, namespace: str, name: str, group: str) -> None:
        await self.primary.withdraw(namespace, name, group)
        for mirror in self.mirrors:
            await mirror.withdraw(namespace, name, group)
