"""The GEOIP_CIDRS location table: which networks are near which geo tag.

Parsed here, without I/O, so the settings refuse a malformed table at start-up with the setting's
name, and the DNS server's locator reads the very same table.
"""

from __future__ import annotations

import ipaddress

from app.domain.gslb import GEOTAG_RE

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_geo_cidrs(value: str) -> dict[Network, str]:
    """`10.0.0.0/8=eu,192.168.0.0/16=us`; blank entries ignored, anything else malformed is an error."""
    table: dict[Network, str] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        cidr, sep, tag = (part.strip() for part in item.partition("="))
        if not sep:
            raise ValueError(f"GEOIP_CIDRS entry {item!r} must be CIDR=tag")
        if not GEOTAG_RE.fullmatch(tag):  # a location no cluster's tag can ever equal
            raise ValueError(f"GEOIP_CIDRS entry {item!r}: the tag must be letters, digits and '-' only")
        table[_network(item, cidr)] = tag
    return table


def _network(item: str, cidr: str) -> Network:
    """Host bits are refused as a typo guard: `10.0.1.5/24` may have meant /32 as well as 10.0.1.0/24."""
    try:
        return ipaddress.ip_network(cidr)
    except ValueError:
        pass
    try:
        network = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        raise ValueError(f"GEOIP_CIDRS entry {item!r}: {cidr!r} is not a network") from None
    raise ValueError(f"GEOIP_CIDRS entry {item!r}: host bits set, did you mean {network}?")
