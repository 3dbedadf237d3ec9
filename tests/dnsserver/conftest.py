"""A real DnsServer on 127.0.0.1 (port 0) over a zone table holding every record shape it must serve."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from app.dnsserver.geo import CidrLocator
from app.dnsserver.server import DnsServer
from app.dnsserver.zonetable import ZoneTable
from app.domain.endpoint import Changes, Endpoint
from app.domain.zones import parse_dns_zones

ZONE = "cloud.example.com"
ZONES = parse_dns_zones("example.com:cloud.example.com:30;example.org:geo.example.org:60")
NS_NAMES = ["gslb-ns-eu-cloud.example.com", "gslb-ns-us-cloud.example.com"]
GEO = "10.10.0.0/16=eu,10.20.0.0/16=us,10.20.30.0/24=us-west,127.0.0.2/32=us"

RR = (("strategy", "roundRobin"),)
BIG = tuple(f"10.50.{i // 250}.{i % 250 + 1}" for i in range(60))
"""60 A records: 12+23+60*16 bytes > 512 (TC without EDNS) but < 1232 (fits with EDNS)."""
HUGE = tuple(f"10.60.{i // 250}.{i % 250 + 1}" for i in range(100))
"""100 A records: more than 1232 bytes, truncated over UDP even with EDNS."""
MANY = tuple(f"10.70.0.{i}" for i in range(1, 7))
"""6 targets: more than the server enumerates, so order is drawn per query."""

RECORDS = (
    Endpoint(f"app.{ZONE}", ("10.0.0.1", "10.0.0.2", "10.0.0.3"), "A", 30, RR),
    Endpoint(f"localtargets-app.{ZONE}", ("10.0.0.1", "10.0.0.2"), "A", 30),
    Endpoint(f"single.{ZONE}", ("10.0.0.9",), "A", 45, (("strategy", "failover"),)),
    Endpoint(
        f"weighted.{ZONE}",
        ("10.1.0.1", "10.2.0.1"),
        "A",
        30,
        (("strategy", "roundRobin"), ("weight-eu-0-80", "10.1.0.1"), ("weight-us-0-20", "10.2.0.1")),
    ),
    Endpoint(
        f"zero.{ZONE}",
        ("10.1.0.1", "10.2.0.1", "10.3.0.1", "10.3.0.2"),
        "A",
        30,
        (
            ("strategy", "roundRobin"),
            ("weight-eu-0-50", "10.1.0.1"),
            ("weight-us-0-50", "10.2.0.1"),
            ("weight-za-0-0", "10.3.0.1"),
            ("weight-za-1-0", "10.3.0.2"),
        ),
    ),
    Endpoint(f"geo.{ZONE}", ("10.10.0.5", "10.10.0.6", "10.20.0.5"), "A", 30, (("strategy", "geoip"),)),
    Endpoint(f"big.{ZONE}", BIG, "A", 30, RR),
    Endpoint(f"huge.{ZONE}", HUGE, "A", 30, RR),
    Endpoint(f"many.{ZONE}", MANY, "A", 30, RR),
    Endpoint(f"txt.{ZONE}", ('"hello world"',), "TXT", 30),
    Endpoint(f"deep.under.{ZONE}", ("10.0.0.7",), "A", 30),
)


@pytest.fixture
def locator() -> CidrLocator:
    return CidrLocator.from_setting(GEO)


@pytest.fixture
async def table(locator: CidrLocator) -> ZoneTable:
    zone_table = ZoneTable(ZONES, {ZONE: NS_NAMES}, geo=locator)
    await zone_table.apply(ZONE, Changes(create=RECORDS))
    return zone_table


class Notifications(list[tuple[str, str]]):
    """What the server passed to on_notify."""


@pytest.fixture
def notifications() -> Notifications:
    return Notifications()


@pytest.fixture
async def server(table: ZoneTable, notifications: Notifications) -> AsyncIterator[DnsServer]:
    dns_server = DnsServer(
        table,
        "127.0.0.1",
        0,
        on_notify=lambda zone, name: notifications.append((zone, name)),
        tcp_idle_timeout=0.5,
        max_tcp_connections=8,
    )
    await dns_server.start()
    try:
        yield dns_server
    finally:
        await dns_server.stop()
