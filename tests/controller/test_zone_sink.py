"""The embedded zone sink: each Gslb owns its records, plans against its own last publication, and
recovers when the zone was changed behind its back."""

from app.controller.embedded import ZoneSink
from app.dnsserver.zonetable import ZoneTable
from app.domain.endpoint import Changes, Endpoint
from app.domain.gslb import Gslb
from app.domain.zones import parse_dns_zones
from tests.support.gslb_factory import gslb_body

ZONES = parse_dns_zones("example.com:cloud.example.com:30")
ZONE = "cloud.example.com"


def gslb(name: str) -> Gslb:
    return Gslb.model_validate(gslb_body(name, dnsTtlSeconds=30))


def rec(name: str, *ips: str) -> Endpoint:
    return Endpoint(f"{name}.{ZONE}", ips, "A", 30)


async def held(table: ZoneTable) -> dict[str, tuple[str, ...]]:
    return {e.dns_name: e.targets for e in await table.records(ZONE)}


async def test_publish_update_and_withdraw_touch_only_the_owners_records():
    table = ZoneTable(ZONES)
    sink = ZoneSink(table, ZONES)
    await sink.publish(gslb("a"), [rec("a", "10.0.0.1")])
    await sink.publish(gslb("b"), [rec("b", "10.0.0.2")])
    await sink.publish(gslb("a"), [rec("a", "10.0.0.9"), rec("a2", "10.0.0.3")])
    assert await held(table) == {
        f"a.{ZONE}": ("10.0.0.9",),
        f"a2.{ZONE}": ("10.0.0.3",),
        f"b.{ZONE}": ("10.0.0.2",),
    }
    await sink.withdraw("test-gslb", "a", "k8gb.io")
    assert await held(table) == {f"b.{ZONE}": ("10.0.0.2",)}


async def test_a_zone_changed_behind_the_sinks_back_is_replanned_from_what_it_holds():
    table = ZoneTable(ZONES)
    sink = ZoneSink(table, ZONES)
    await sink.publish(gslb("a"), [rec("a", "10.0.0.1")])
    # Someone deletes the record directly: the sink's idea of the zone is now stale.
    await table.apply(ZONE, Changes(delete=(rec("a", "10.0.0.1"),)))
    await sink.publish(gslb("a"), [rec("a", "10.0.0.5")])
    assert await held(table) == {f"a.{ZONE}": ("10.0.0.5",)}
