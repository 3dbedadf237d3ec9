"""The built-in DNS server answers from the cluster's local DNSEndpoints, whoever wrote them: the zone feed
watches the emulated API server and keeps a real ZoneTable, served by a real DnsServer, in step."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import dns.rcode
import dns.rdatatype
import pytest

from app.dnsserver.server import DnsServer
from app.dnsserver.zonetable import ZoneTable
from app.domain.endpoint import Endpoint, merge_endpoints
from app.domain.zones import parse_dns_zones
from app.stores.kube.client import DNS_ENDPOINT, KubeClient
from app.stores.kube.watch import Informer
from app.stores.kube.zonefeed import DnsEndpointZoneFeed
from tests.support.instance import a_records, eventually, query
from tests.support.kmockapi import KubeApi

FIXTURE = Path(__file__).parent / "fixtures" / "k8gb_dnsendpoint_weighted.json"
NS = "test-gslb"
ZONE = "cloud.example.com"
WEIGHTED = f"weighted.{ZONE}"
DE = ("externaldns.k8s.io", "dnsendpoints")


def k8gb_dnsendpoint() -> dict[str, Any]:
    """What k8gb writes for a weighted Gslb, created by hand (no Gslb owns it here)."""
    body: dict[str, Any] = json.loads(FIXTURE.read_text())
    body["metadata"].pop("ownerReferences")
    return body


def dnsendpoint(name: str, *endpoints: dict[str, Any], dnstype: str = "local") -> dict[str, Any]:
    return {
        "apiVersion": "externaldns.k8s.io/v1alpha1",
        "kind": "DNSEndpoint",
        "metadata": {"name": name, "namespace": NS, "labels": {"k8gb.io/dnstype": dnstype}},
        "spec": {"endpoints": list(endpoints)},
    }


def create(api: KubeApi, body: dict[str, Any]) -> dict[str, Any]:
    return api.create_object("externaldns.k8s.io", "v1alpha1", "dnsendpoints", body)


def a(name: str, *targets: str, **extra: Any) -> dict[str, Any]:
    return {"dnsName": name, "targets": list(targets), "recordType": "A", **extra}


class Served:
    """A feed writing into a zone table that a DNS server on a free port answers from."""

    def __init__(self, table: ZoneTable, server: DnsServer, feed: DnsEndpointZoneFeed) -> None:
        self.table, self.server, self.feed = table, server, feed

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.server.port)

    async def until(self, name: str, expected: set[str] | None) -> None:
        await eventually(lambda: a_records(self.address, name), expected)

    async def record(self, name: str) -> Endpoint | None:
        return next((e for e in await self.table.records(ZONE) if e.dns_name == name), None)


@pytest.fixture(params=["own watch", "shared informer"])
async def served(kube: KubeClient, request: pytest.FixtureRequest) -> AsyncIterator[Served]:
    """The feed with its own label-selected watch (a follower), or on the informer of every
    DNSEndpoint that the reconciler reads too (`gslb serve` in kubernetes mode)."""
    zones = parse_dns_zones(f"example.com:{ZONE}:30")
    table = ZoneTable(zones)
    server = DnsServer(table, "127.0.0.1", 0)
    await server.start()
    shared = Informer(kube, DNS_ENDPOINT) if request.param == "shared informer" else None
    feed = DnsEndpointZoneFeed(kube, table, zones, informer=shared)
    try:
        await feed.start()
        yield Served(table, server, feed)
    finally:
        await feed.stop()
        if shared is not None:
            await shared.stop()
        await server.stop()


async def test_a_dnsendpoint_written_as_k8gb_writes_it_is_served_with_its_weights(
    kube_api: KubeApi, served: Served
) -> None:
    create(kube_api, k8gb_dnsendpoint())

    await served.until(WEIGHTED, {"10.0.0.1", "10.0.0.2", "172.16.0.1"})
    assert await a_records(served.address, f"localtargets-{WEIGHTED}") == {"10.0.0.1", "10.0.0.2"}
    response = await query(served.address, WEIGHTED)
    assert response.answer[0].ttl == 30
    record = await served.record(WEIGHTED)
    assert record is not None and dict(record.labels) == {  # what orders the answers by weight
        "strategy": "roundRobin",
        "weight-eu-0-80": "10.0.0.1",
        "weight-eu-1-80": "10.0.0.2",
        "weight-us-0-20": "172.16.0.1",
    }


async def test_changes_and_deletion_follow_the_object(kube_api: KubeApi, served: Served) -> None:
    host = f"app.{ZONE}"
    created = create(kube_api, dnsendpoint("app", a(host, "10.1.0.1")))
    await served.until(host, {"10.1.0.1"})

    created["spec"]["endpoints"] = [a(host, "10.1.0.2", "10.1.0.3")]
    kube_api.update_object(*DE, created)
    await served.until(host, {"10.1.0.2", "10.1.0.3"})

    kube_api.delete_object(*DE, NS, "app")
    await served.until(host, None)
    response = await query(served.address, host)
    assert response.rcode() == dns.rcode.NXDOMAIN
    assert response.authority[0].rdtype == dns.rdatatype.SOA


async def test_only_local_dnsendpoints_are_served(kube_api: KubeApi, served: Served) -> None:
    local, extdns = f"local.{ZONE}", f"edge.{ZONE}"
    create(kube_api, dnsendpoint("edge", a(extdns, "10.2.0.1"), dnstype="extdns"))
    create(kube_api, dnsendpoint("local", a(local, "10.2.0.2")))
    await served.until(local, {"10.2.0.2"})
    assert await a_records(served.address, extdns) is None

    relabelled = kube_api.get_object(*DE, NS, "local")
    assert relabelled is not None
    relabelled["metadata"]["labels"]["k8gb.io/dnstype"] = "extdns"  # handed over to ExternalDNS
    kube_api.update_object(*DE, relabelled)
    await served.until(local, None)


async def test_one_name_in_two_objects_is_served_as_one_record_set(kube_api: KubeApi, served: Served) -> None:
    host = f"shared.{ZONE}"
    create(kube_api, dnsendpoint("b", a(host, "10.3.0.2", "10.3.0.1")))
    create(kube_api, dnsendpoint("a", a(host, "10.3.0.1")))
    await served.until(host, {"10.3.0.1", "10.3.0.2"})
    kube_api.delete_object(*DE, NS, "b")
    await served.until(host, {"10.3.0.1"})


async def test_a_bad_record_is_skipped_and_hides_nothing(
    kube_api: KubeApi, served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    good, bad, outside = f"good.{ZONE}", f"bad.{ZONE}", "elsewhere.example.org"
    create(
        kube_api,
        dnsendpoint(
            "mixed",
            a(good, "10.4.0.1"),
            a(bad, "not-an-address"),
            a(outside, "10.4.0.9"),
            a(f"empty.{ZONE}"),
        ),
    )
    await served.until(good, {"10.4.0.1"})
    assert await a_records(served.address, bad) is None
    assert await a_records(served.address, f"empty.{ZONE}") is None
    assert (await query(served.address, outside)).rcode() == dns.rcode.REFUSED
    assert any(bad in r.getMessage() for r in caplog.records if r.levelname == "WARNING")

    fixed = kube_api.get_object(*DE, NS, "mixed")
    assert fixed is not None
    fixed["spec"]["endpoints"][1]["targets"] = ["10.4.0.2"]
    kube_api.update_object(*DE, fixed)
    await served.until(bad, {"10.4.0.2"})


async def test_records_present_before_the_feed_starts_are_served_at_once(
    kube_api: KubeApi, kube: KubeClient
) -> None:
    create(kube_api, k8gb_dnsendpoint())
    zones = parse_dns_zones(f"example.com:{ZONE}:30")
    table = ZoneTable(zones)
    feed = DnsEndpointZoneFeed(kube, table, zones)
    await feed.start()
    try:
        assert {e.dns_name for e in await table.records(ZONE)} == {WEIGHTED, f"localtargets-{WEIGHTED}"}
    finally:
        await feed.stop()


def test_merge_keeps_object_order_first_labels_and_ttl() -> None:
    first = Endpoint("x.example.com", ("10.0.0.2", "10.0.0.1"), ttl=0, labels=(("strategy", "failover"),))
    second = Endpoint("x.example.com", ("10.0.0.1", "10.0.0.3"), ttl=60, labels=(("strategy", "geoip"),))
    merged = merge_endpoints([first, second])
    assert merged is not None
    assert merged.targets == ("10.0.0.2", "10.0.0.1", "10.0.0.3")
    assert (merged.ttl, merged.labels) == (60, (("strategy", "failover"),))
    assert merge_endpoints([Endpoint("x.example.com", (), ttl=0)]) is None
    assert merge_endpoints([Endpoint("x.example.com", ("10.0.0.1",), ttl=0)]).ttl == 30  # type: ignore[union-attr]


async def test_a_relist_after_expired_history_keeps_records_and_catches_up(
    kube_api: KubeApi, served: Served
) -> None:
    kept, changed = f"kept.{ZONE}", f"changed.{ZONE}"
    create(kube_api, dnsendpoint("kept", a(kept, "10.5.0.1")))
    later = create(kube_api, dnsendpoint("changed", a(changed, "10.5.0.2")))
    await served.until(changed, {"10.5.0.2"})
    applied = served.feed.applied

    lists = sum(1 for r in kube_api if r.resource and r.resource.plural == "dnsendpoints" and not r.name)

    kube_api.drop_watches()  # the stream ends before the change is sent on it ...
    later["spec"]["endpoints"] = [a(changed, "10.5.0.3")]
    kube_api.update_object(*DE, later)
    kube_api.compact()  # ... and the history is gone: the watch gets 410 Expired and lists again
    await served.until(changed, {"10.5.0.3"})
    assert await a_records(served.address, kept) == {"10.5.0.1"}
    assert served.feed.applied == applied + 1  # only the real change was written again
    relisted = [r for r in kube_api if r.resource and r.resource.plural == "dnsendpoints" and not r.name]
    assert len(relisted) > lists and any(r.params.get("watch") is None for r in relisted[lists:])


async def test_a_cname_is_served_with_its_target_as_written_by_externaldns_users(
    kube_api: KubeApi, served: Served
) -> None:
    """DNSEndpoint targets are fully qualified names without the trailing dot (ExternalDNS's form)."""
    alias = f"alias.{ZONE}"
    create(
        kube_api,
        dnsendpoint(
            "alias",
            {"dnsName": alias, "targets": ["lb.example.org"], "recordType": "CNAME"},
            a(f"marker.{ZONE}", "10.5.0.1"),
        ),
    )
    await served.until(f"marker.{ZONE}", {"10.5.0.1"})
    response = await query(served.address, alias, "CNAME")
    assert response.rcode() == dns.rcode.NOERROR
    assert [rr.target.to_text() for rrset in response.answer for rr in rrset] == ["lb.example.org."]
