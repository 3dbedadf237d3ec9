"""Where a client or a target is: the location tags behind the `geoip` strategy.

k8gb's CoreDNS reads a MaxMind-format database field (`datacenter` by default); we accept that, a
plain CIDR table (handy when no database is at hand) and a chain of both. Lookups are synchronous
and in memory because they run on the DNS hot path; anything that reads files does so once, up front.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import maxminddb

from app.domain import locations


class GeoLocator(Protocol):
    def locate(self, ip: str) -> str | None:
        """The location tag of `ip`, or None when unknown (also for text that is not an address)."""
        ...


def _parse_ip(ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(ip)
    except ValueError:
        return None


class CidrLocator:
    """Longest-prefix match over a `CIDR=tag` table, one dict probe per configured prefix length."""

    def __init__(self, table: Mapping[locations.Network, str]) -> None:
        self._by_len: dict[int, list[tuple[int, dict[int, str]]]] = {4: [], 6: []}
        grouped: dict[tuple[int, int], dict[int, str]] = {}
        for net, tag in table.items():
            grouped.setdefault((net.version, net.prefixlen), {})[int(net.network_address)] = tag
        for (version, prefixlen), nets in sorted(grouped.items(), key=lambda kv: -kv[0][1]):
            width = 32 if version == 4 else 128
            mask = ((1 << prefixlen) - 1) << (width - prefixlen)
            self._by_len[version].append((mask, nets))

    @classmethod
    def from_setting(cls, value: str) -> CidrLocator:
        """GEOIP_CIDRS, as the settings check it (ValueError when malformed)."""
        return cls(locations.parse_geo_cidrs(value))

    def locate(self, ip: str) -> str | None:
        addr = _parse_ip(ip)
        if addr is None:
            return None
        value = int(addr)
        for mask, nets in self._by_len[addr.version]:
            tag = nets.get(value & mask)
            if tag is not None:
                return tag
        return None


class MaxMindLocator:
    """A MaxMind-format database read whole into memory once; `field` may be dotted (`continent.code`)."""

    def __init__(self, path: str | Path, field: str = "datacenter") -> None:
        self._reader = maxminddb.open_database(str(path), maxminddb.MODE_MEMORY)
        self._path = tuple(field.split("."))

    @classmethod
    async def load(cls, path: str | Path, field: str = "datacenter") -> MaxMindLocator:
        """Open off the event loop: reading the file is blocking I/O."""
        return await asyncio.to_thread(cls, path, field)

    def locate(self, ip: str) -> str | None:
        try:
            record: Any = self._reader.get(ip)
        except ValueError:
            return None
        for key in self._path:
            if not isinstance(record, dict):
                return None
            record = record.get(key)
        return str(record) if isinstance(record, str | int) and not isinstance(record, bool) else None

    def close(self) -> None:
        self._reader.close()


class ChainLocator:
    """Asks each locator in turn; the first answer wins."""

    def __init__(self, locators: Iterable[GeoLocator]) -> None:
        self._locators: Sequence[GeoLocator] = tuple(locators)

    def locate(self, ip: str) -> str | None:
        for locator in self._locators:
            tag = locator.locate(ip)
            if tag is not None:
                return tag
        return None


@dataclass(frozen=True, slots=True)
class GeoSpec:
    """The geo settings (GEOIP_CIDRS, GEOIP_DATABASE, GEOIP_FIELD) as plain data, so a DNS worker
    process can build its own locator: a locator holds an open database and is not sent anywhere."""

    cidrs: str = ""
    database: Path | None = None
    field: str = "datacenter"

    async def build(self) -> GeoLocator | None:
        """The CIDR table first, then the database; None when neither is set."""
        locators: list[GeoLocator] = []
        if self.cidrs:
            locators.append(CidrLocator.from_setting(self.cidrs))
        if self.database is not None:
            locators.append(await MaxMindLocator.load(self.database, self.field))
        return ChainLocator(locators) if locators else None
