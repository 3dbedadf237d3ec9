"""DNS_ZONES parsing and k8gb's NS/glue naming (k8gb.md §3)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
#: RFC 2181 §8: a TTL is at most 2^31 - 1 (from 2^32 on it does not even fit the wire's 32 bits).
MAX_TTL = 2**31 - 1


@dataclass(frozen=True, slots=True)
class ZoneConfig:
    parent_zone: str
    load_balanced_zone: str
    neg_ttl: int

    def contains(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        zone = self.load_balanced_zone.lower()
        return host == zone or host.endswith("." + zone)

    def glue_name(self, prefix: str, geo_tag: str) -> str:
        """`<prefix><tag>-<zone minus .parent, dots→dashes>.<parent>`, e.g. gslb-ns-eu-cloud.example.com."""
        sub = self.load_balanced_zone
        if sub.endswith("." + self.parent_zone):
            sub = sub[: -len(self.parent_zone) - 1]
        return f"{prefix}{geo_tag}-{sub.replace('.', '-')}.{self.parent_zone}"


def valid_name(name: str) -> bool:
    """A host name the edge accepts: at most 253 octets, labels of 1-63 letters, digits and '-',
    never at either end of a label."""
    return len(name) <= 253 and all(_LABEL.match(label) for label in name.rstrip(".").split("."))


def parse_dns_zones(value: str) -> list[ZoneConfig]:
    """`parent:loadBalanced:negTTL` triplets joined by `;`; exactly three fields each."""
    zones: list[ZoneConfig] = []
    for chunk in filter(None, (c.strip() for c in value.split(";"))):
        parts = [p.strip() for p in chunk.split(":")]
        if len(parts) != 3:
            raise ValueError(f"DNS_ZONES entry {chunk!r} must be parent:loadBalancedZone:negTTL")
        parent, zone, neg = (p.lower().rstrip(".") for p in parts)
        if not neg.isdigit() or int(neg) > MAX_TTL:
            raise ValueError(f"DNS_ZONES entry {chunk!r}: negTTL must be a whole number from 0 to {MAX_TTL}")
        if not (valid_name(parent) and valid_name(zone)):
            raise ValueError(f"DNS_ZONES entry {chunk!r}: zone names must be valid DNS names")
        if zone == parent or not zone.endswith("." + parent):
            raise ValueError(f"DNS_ZONES entry {chunk!r}: {zone} must be a subdomain of {parent}")
        zones.append(ZoneConfig(parent_zone=parent, load_balanced_zone=zone, neg_ttl=int(neg)))
    return zones


def zone_for(host: str, zones: list[ZoneConfig]) -> ZoneConfig | None:
    """The most specific configured zone containing the host."""
    matches = [z for z in zones if z.contains(host)]
    return max(matches, key=lambda z: len(z.load_balanced_zone)) if matches else None


def localtargets_name(host: str) -> str:
    name = f"localtargets-{host}"
    if len(name) > 253 or any(len(label) > 63 for label in name.split(".")):
        raise ValueError(f"localtargets name for {host!r} exceeds DNS length limits")
    return name
