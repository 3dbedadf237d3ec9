"""ZoneTable as a provider: records(), whole-or-nothing apply, NS names and the SOA serial."""

from __future__ import annotations

import dns.name
import dns.rcode
import dns.rdatatype
import pytest

from app.dnsserver.zonetable import NameKey, ZoneTable, ZoneTableError, name_key
from app.domain.endpoint import Changes, Endpoint
from app.domain.zones import parse_dns_zones

from .conftest import RECORDS, ZONE, ZONES

A = Endpoint(f"a.{ZONE}", ("10.0.0.1",))
B = Endpoint(f"b.{ZONE}", ("10.0.0.2",))
A2 = Endpoint(f"a.{ZONE}", ("10.0.0.3", "10.0.0.4"), ttl=60)


async def _table(*endpoints: Endpoint) -> ZoneTable:
    table = ZoneTable(ZONES)
    if endpoints:
        await table.apply(ZONE, Changes(create=endpoints))
    return table


async def test_records_lists_what_was_applied() -> None:
    table = ZoneTable(ZONES)
    await table.apply(ZONE, Changes(create=RECORDS))
    assert {e.key for e in await table.records(ZONE)} == {e.key for e in RECORDS}
    assert await table.records("geo.example.org") == []


async def test_update_and_delete_change_what_is_served() -> None:
    table = await _table(A, B)
    await table.apply(ZONE, Changes(update_old=(A,), update_new=(A2,), delete=(B,)))
    assert await table.records(ZONE) == [A2]
    found = table.lookup(dns.name.from_text(f"a.{ZONE}"), dns.rdatatype.A)
    assert found is not None and found.answer is not None
    assert sorted(r.to_text() for r in found.answer.rrset) == ["10.0.0.3", "10.0.0.4"]
    gone = table.lookup(dns.name.from_text(f"b.{ZONE}"), dns.rdatatype.A)
    assert gone is not None and gone.rcode == dns.rcode.NXDOMAIN


@pytest.mark.parametrize(
    "changes, message",
    [
        pytest.param(Changes(create=(B, A)), "already exists", id="create-existing"),
        pytest.param(Changes(create=(B, B)), "twice", id="create-twice"),
        pytest.param(Changes(update_old=(B,), update_new=(B,)), "does not exist", id="update-missing"),
        pytest.param(
            Changes(create=(B,), delete=(Endpoint(f"c.{ZONE}", ("1.2.3.4",)),)),
            "does not exist",
            id="delete-missing",
        ),
        pytest.param(
            Changes(create=(B,), delete=(A,), update_new=(A2,)), "twice", id="update-and-delete-same"
        ),
        pytest.param(
            Changes(create=(B, Endpoint("x.example.net", ("1.2.3.4",)))), "not inside", id="outside-zone"
        ),
        pytest.param(Changes(create=(B, Endpoint(f"c.{ZONE}", ("300.1.1.1",)))), "bad A target", id="bad-ip"),
        pytest.param(
            Changes(create=(B, Endpoint(f"c.{ZONE}", ("10.0.0.1",), "MX"))), "record type", id="bad-type"
        ),
        pytest.param(Changes(create=(B, Endpoint(f"c.{ZONE}", ()))), "at least one target", id="no-targets"),
        pytest.param(Changes(create=(B, Endpoint(f"c.{ZONE}", ("10.0.0.1",), ttl=-1))), "TTL", id="bad-ttl"),
        pytest.param(
            Changes(
                create=(B, Endpoint(f"c.{ZONE}", ("10.0.0.1",), labels=(("weight-eu-x-10", "10.0.0.1"),)))
            ),
            "weight-<geo>",
            id="bad-weight-label",
        ),
    ],
)
async def test_apply_is_all_or_nothing(changes: Changes, message: str) -> None:
    table = await _table(A)
    serial = table.serial(ZONE)
    with pytest.raises(ZoneTableError, match=message):
        await table.apply(ZONE, changes)
    assert await table.records(ZONE) == [A]
    assert table.serial(ZONE) == serial
    untouched = table.lookup(dns.name.from_text(f"b.{ZONE}"), dns.rdatatype.A)
    assert untouched is not None and untouched.rcode == dns.rcode.NXDOMAIN


async def test_unknown_zone_is_a_clear_error() -> None:
    table = await _table()
    with pytest.raises(ZoneTableError, match="not served here"):
        await table.records("other.example.com")
    with pytest.raises(ZoneTableError, match="not served here"):
        await table.apply("other.example.com", Changes(create=(A,)))


async def test_serial_increases_on_every_write() -> None:
    table = await _table()
    first = table.serial(ZONE)
    await table.apply(ZONE, Changes(create=(A,)))
    table.set_ns_names(ZONE, ["ns1.example.com"])
    await table.apply(ZONE, Changes(delete=(A,)))
    assert table.serial(ZONE) == first + 3


async def test_empty_change_set_is_not_a_write() -> None:
    table = await _table()
    first = table.serial(ZONE)
    await table.apply(ZONE, Changes())
    assert table.serial(ZONE) == first


async def test_adjust_is_identity() -> None:
    table = await _table()
    assert table.adjust(list(RECORDS)) == list(RECORDS)
    assert table.name == "builtin"


async def test_empty_non_terminals_exist_only_while_their_children_do() -> None:
    deep = Endpoint(f"x.y.{ZONE}", ("10.0.0.1",))
    table = await _table(deep)
    ent = dns.name.from_text(f"y.{ZONE}")
    found = table.lookup(ent, dns.rdatatype.A)
    assert found is not None and found.rcode == dns.rcode.NOERROR and found.answer is None
    await table.apply(ZONE, Changes(delete=(deep,)))
    found = table.lookup(ent, dns.rdatatype.A)
    assert found is not None and found.rcode == dns.rcode.NXDOMAIN


async def test_writes_notify_subscribers_until_unsubscribed() -> None:
    table = await _table()
    calls: list[int] = []
    unsubscribe = table.subscribe(lambda changed: calls.append(1))
    await table.apply(ZONE, Changes(create=(A,)))
    unsubscribe()
    await table.apply(ZONE, Changes(create=(B,)))
    assert calls == [1]


async def test_names_match_in_any_case_and_spelling() -> None:
    mixed = Endpoint(f"MiXed.Y.{ZONE.upper()}.", ("10.0.0.1",))
    idna = Endpoint(f"bücher.{ZONE}", ("10.0.0.2",))
    table = await _table(mixed, idna)
    for spelling in (f"mixed.y.{ZONE}", f"MIXED.y.{ZONE.upper()}"):
        found = table.lookup(dns.name.from_text(spelling), dns.rdatatype.A)
        assert found is not None and [r.to_text() for r in found.answer.rrset] == ["10.0.0.1"]
    ent = table.lookup(dns.name.from_text(f"y.{ZONE.upper()}"), dns.rdatatype.A)
    assert ent is not None and ent.rcode == dns.rcode.NOERROR and ent.answer is None
    found = table.lookup(dns.name.from_text(f"xn--bcher-kva.{ZONE}"), dns.rdatatype.A)
    assert found is not None and [r.to_text() for r in found.answer.rrset] == ["10.0.0.2"]
    with pytest.raises(ZoneTableError, match="not a valid DNS name"):
        await table.apply(ZONE, Changes(create=(Endpoint(f"{'x' * 64}.{ZONE}", ("10.0.0.3",)),)))


async def test_addresses_in_any_spelling_serve_the_same_record() -> None:
    table = await _table(Endpoint(f"v6.{ZONE}", ("2001:DB8:0:0::1",), "AAAA"))
    found = table.lookup(dns.name.from_text(f"v6.{ZONE}"), dns.rdatatype.AAAA)
    assert found is not None and [r.to_text() for r in found.answer.rrset] == ["2001:db8::1"]
    with pytest.raises(ZoneTableError, match="bad AAAA target"):
        await table.apply(ZONE, Changes(create=(Endpoint(f"w.{ZONE}", ("2001:db8::g",), "AAAA"),)))


async def test_a_record_belongs_to_the_deepest_zone_served() -> None:
    table = ZoneTable(parse_dns_zones("com:example.com:30;example.com:cloud.example.com:30"))
    with pytest.raises(ZoneTableError, match="not inside zone example.com"):
        await table.apply("example.com", Changes(create=(Endpoint("a.cloud.example.com", ("10.0.0.1",)),)))
    await table.apply("example.com", Changes(create=(Endpoint("a.other.example.com", ("10.0.0.1",)),)))
    inner = table.lookup(dns.name.from_text("a.cloud.example.com"), dns.rdatatype.A)
    assert inner is not None and inner.zone.load_balanced_zone == "cloud.example.com"
    assert inner.rcode == dns.rcode.NXDOMAIN


async def test_subscribers_hear_the_names_written_and_their_ancestors() -> None:
    table = await _table()
    heard: list[frozenset[NameKey] | None] = []
    table.subscribe(heard.append)
    await table.apply(ZONE, Changes(create=(Endpoint(f"x.y.{ZONE}", ("10.0.0.1",)),)))
    keys = {name_key(dns.name.from_text(n)) for n in (ZONE, f"y.{ZONE}", f"x.y.{ZONE}")}
    assert heard == [frozenset(keys)]
