"""The embedded zone sink: each Gslb owns its records, plans against its own last publication, and
recovers when the zone was changed behind its back."""

import asyncio

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
    await sink.withdraw("test-gslb", "a", "k8gb.io", None)
    assert await held(table) == {f"b.{ZONE}": ("10.0.0.2",)}


async def test_a_zone_changed_behind_the_sinks_back_is_replanned_from_what_it_holds():
    table = ZoneTable(ZONES)
    sink = ZoneSink(table, ZONES)
    await sink.publish(gslb("a"), [rec("a", "10.0.0.1")])
    # Someone deletes the record directly: the sink's idea of the zone is now stale.
    await table.apply(ZONE, Changes(delete=(rec("a", "10.0.0.1"),)))
    await sink.publish(gslb("a"), [rec("a", "10.0.0.5")])
    assert await held(table) == {f"a.{ZONE}": ("10.0.0.5",)}


async def held_sets(table: ZoneTable) -> dict[str, set[str]]:
    """What the zone serves, targets as sets (the order of an A RRset is no part of its value)."""
    return {name: set(targets) for name, targets in (await held(table)).items()}


def twin(name: str, group: str) -> Gslb:
    return Gslb.model_validate(gslb_body(name, group=group, dnsTtlSeconds=30))


async def test_gslbs_sharing_a_host_are_served_merged_and_one_leaving_keeps_the_others_records():
    table = ZoneTable(ZONES)
    sink = ZoneSink(table, ZONES)
    legacy, current = twin("app", "k8gb.absa.oss"), twin("app", "k8gb.io")
    await sink.publish(legacy, [rec("app", "10.0.0.1"), rec("localtargets-app", "10.0.0.1")])
    await sink.publish(current, [rec("app", "10.0.0.2", "10.0.0.1"), rec("localtargets-app", "10.0.0.1")])
    # Served as one, in (namespace, name, group) order: targets without repeats.
    assert await held_sets(table) == {
        f"app.{ZONE}": {"10.0.0.1", "10.0.0.2"},
        f"localtargets-app.{ZONE}": {"10.0.0.1"},
    }

    await sink.withdraw("test-gslb", "app", "k8gb.absa.oss", None)
    assert await held_sets(table) == {
        f"app.{ZONE}": {"10.0.0.1", "10.0.0.2"},
        f"localtargets-app.{ZONE}": {"10.0.0.1"},
    }
    # The survivor's next (unchanged) publication changes nothing; its own withdrawal empties the zone.
    await sink.publish(current, [rec("app", "10.0.0.2", "10.0.0.1"), rec("localtargets-app", "10.0.0.1")])
    assert await held_sets(table) == {
        f"app.{ZONE}": {"10.0.0.1", "10.0.0.2"},
        f"localtargets-app.{ZONE}": {"10.0.0.1"},
    }
    await sink.withdraw("test-gslb", "app", "k8gb.io", None)
    assert await held_sets(table) == {}


async def test_a_gslb_dropping_a_shared_host_leaves_it_to_the_other():
    table = ZoneTable(ZONES)
    sink = ZoneSink(table, ZONES)
    await sink.publish(gslb("a"), [rec("shared", "10.0.0.1")])
    await sink.publish(gslb("b"), [rec("shared", "10.0.0.2"), rec("b", "10.0.0.2")])
    assert await held_sets(table) == {f"shared.{ZONE}": {"10.0.0.1", "10.0.0.2"}, f"b.{ZONE}": {"10.0.0.2"}}
    await sink.publish(gslb("b"), [rec("b", "10.0.0.2")])  # b no longer claims the host
    assert await held_sets(table) == {f"shared.{ZONE}": {"10.0.0.1"}, f"b.{ZONE}": {"10.0.0.2"}}
    await sink.publish(gslb("a"), [])  # a has no healthy record: the host is not served
    assert await held_sets(table) == {f"b.{ZONE}": {"10.0.0.2"}}


class Yielding:
    """The zone table behind a provider that yields on every call, as a remote one does."""

    def __init__(self, table: ZoneTable) -> None:
        self.table = table

    def adjust(self, endpoints: list[Endpoint]) -> list[Endpoint]:
        return self.table.adjust(endpoints)

    async def records(self, zone: str) -> list[Endpoint]:
        await asyncio.sleep(0)
        return await self.table.records(zone)

    async def apply(self, zone: str, changes: Changes) -> None:
        await asyncio.sleep(0)
        await self.table.apply(zone, changes)


async def test_owners_of_one_host_publishing_at_once_are_both_served():
    table = ZoneTable(ZONES)
    sink = ZoneSink(Yielding(table), ZONES)  # type: ignore[arg-type]
    await asyncio.gather(
        sink.publish(gslb("a"), [rec("shared", "10.0.0.1")]),
        sink.publish(gslb("b"), [rec("shared", "10.0.0.2")]),
    )
    assert await held_sets(table) == {f"shared.{ZONE}": {"10.0.0.1", "10.0.0.2"}}
    await sink.publish(gslb("a"), [rec("shared", "10.0.0.1")])  # a resync changes nothing
    assert await held_sets(table) == {f"shared.{ZONE}": {"10.0.0.1", "10.0.0.2"}}
