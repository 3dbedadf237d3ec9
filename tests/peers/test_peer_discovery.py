"""PeerDirectory: glue names resolved through real edge servers, k8gb's nameserver rule, caching."""

from __future__ import annotations

import asyncio
import logging

import pytest

from app.domain.zones import parse_dns_zones
from app.peers.discovery import PeerDirectory, peer_nameservers
from tests.peers.conftest import DnsNet

GLUE_US = "gslb-ns-us-cloud.example.com"


@pytest.mark.parametrize(
    ("edges", "expected"),
    [
        pytest.param([("e", 53)], [53], id="plain-53"),
        pytest.param([("e", 5353)], [5353, 53], id="custom-port-adds-53"),
        pytest.param([("e", 53), ("f", 5353)], [53, 5353], id="53-first"),
        pytest.param([("e", 5353), ("f", 53)], [5353], id="53-used-by-second"),
        pytest.param([("e", 1053), ("f", 2053), ("g", 1053)], [1053, 2053, 53], id="dedup"),
        pytest.param([], [53], id="no-edge"),
    ],
)
def test_nameserver_rule(edges: list[tuple[str, int]], expected: list[int]) -> None:
    assert peer_nameservers("10.0.0.7", edges) == [("10.0.0.7", port) for port in expected]


async def test_glue_resolves_through_edge_on_the_edge_port(dns_net: DnsNet) -> None:
    edge = await dns_net.edge({"us": "127.0.0.2", "za": "127.0.0.3"})
    directory = dns_net.directory(["eu", "us", "za"])  # own tag listed too: it is dropped

    peers = await directory.peers_for("app.cloud.example.com")

    assert [(p.geo_tag, p.glue_name, p.addresses, p.error) for p in peers] == [
        ("us", GLUE_US, ("127.0.0.2",), None),
        ("za", "gslb-ns-za-cloud.example.com", ("127.0.0.3",), None),
    ]
    assert peers[0].nameservers == (("127.0.0.2", dns_net.port), ("127.0.0.2", 53))
    assert sorted(edge.names_asked()) == [GLUE_US, "gslb-ns-za-cloud.example.com"]
    assert await directory.peers_for("app.elsewhere.org") == []


async def test_glue_is_cached_for_its_ttl_bounded(dns_net: DnsNet) -> None:
    now = [1000.0]
    edge = await dns_net.edge({"us": "127.0.0.2"}, ttl=3600)
    directory = dns_net.directory(["us"], max_ttl=30, clock=lambda: now[0])

    await directory.peers_for("app.cloud.example.com")
    now[0] += 29
    await directory.peers_for("app.cloud.example.com")
    assert len(edge.received) == 1, "within max_ttl the cached glue is used"
    now[0] += 2
    await directory.peers_for("app.cloud.example.com")
    assert len(edge.received) == 2, "a TTL of 3600 is trusted for max_ttl=30 only"


async def test_zero_ttl_is_trusted_for_min_ttl(dns_net: DnsNet) -> None:
    now = [0.0]
    edge = await dns_net.edge({"us": "127.0.0.2"}, ttl=0)
    directory = dns_net.directory(["us"], min_ttl=1, clock=lambda: now[0])
    await directory.peers_for("a.cloud.example.com")
    await directory.peers_for("b.cloud.example.com")
    assert len(edge.received) == 1
    now[0] += 1.5
    await directory.peers_for("a.cloud.example.com")
    assert len(edge.received) == 2


async def test_concurrent_lookups_share_one_query(dns_net: DnsNet) -> None:
    edge = await dns_net.edge({"us": "127.0.0.2"})
    directory = dns_net.directory(["us"])
    results = await asyncio.gather(*(directory.peers_for(f"h{i}.cloud.example.com") for i in range(5)))
    assert all(peers[0].addresses == ("127.0.0.2",) for peers in results)
    assert edge.names_asked() == [GLUE_US]


async def test_next_edge_server_is_tried_when_one_fails(dns_net: DnsNet) -> None:
    await dns_net.edge({"us": "10.9.9.9"}, mode="servfail")
    second = await dns_net.edge({"us": "127.0.0.2"}, host="127.0.0.5")
    directory = dns_net.directory(
        ["us"], edge_servers=[("127.0.0.1", dns_net.port), ("127.0.0.5", dns_net.port)]
    )
    [peer] = await directory.peers_for("app.cloud.example.com")
    assert peer.addresses == ("127.0.0.2",)
    assert second.names_asked() == [GLUE_US]


async def test_edge_given_by_hostname(dns_net: DnsNet) -> None:
    await dns_net.edge({"us": "127.0.0.2"})
    directory = dns_net.directory(["us"], edge_servers=[("localhost", dns_net.port)])
    [peer] = await directory.peers_for("app.cloud.example.com")
    assert peer.addresses == ("127.0.0.2",)


async def test_unknown_glue_is_an_error_for_that_peer_only(dns_net: DnsNet) -> None:
    await dns_net.edge({"us": "127.0.0.2"})
    directory = dns_net.directory(["us", "za"])
    us, za = await directory.peers_for("app.cloud.example.com")
    assert us.addresses == ("127.0.0.2",) and us.error is None
    assert za.addresses == () and za.nameservers == ()
    assert za.error == "glue gslb-ns-za-cloud.example.com has no A record in edge DNS"


async def test_edge_outage_keeps_known_addresses(dns_net: DnsNet) -> None:
    now = [0.0]
    edge = await dns_net.edge({"us": "127.0.0.2"}, ttl=5)
    directory = dns_net.directory(["us"], clock=lambda: now[0], retry_seconds=2)
    await directory.peers_for("app.cloud.example.com")

    edge.mode = "refuse"
    now[0] += 10
    [peer] = await directory.peers_for("app.cloud.example.com")
    assert peer.addresses == ("127.0.0.2",) and peer.error is None
    assert len(edge.received) == 2

    now[0] += 1  # within retry_seconds: not asked again
    await directory.peers_for("app.cloud.example.com")
    assert len(edge.received) == 2


async def test_an_edge_outage_is_warned_about_once_and_its_end_said(
    dns_net: DnsNet, caplog: pytest.LogCaptureFixture
) -> None:
    """It was a WARNING per glue name on every refresh while the edge was down (720 an hour each)."""
    caplog.set_level(logging.INFO, "app.peers.discovery")
    now = [0.0]
    edge = await dns_net.edge({"us": "127.0.0.2"}, ttl=5)
    directory = dns_net.directory(["us"], clock=lambda: now[0], retry_seconds=2)
    await directory.peers_for("app.cloud.example.com")

    edge.mode = "refuse"
    for _ in range(5):
        now[0] += 10
        [peer] = await directory.peers_for("app.cloud.example.com")
        assert peer.addresses == ("127.0.0.2",)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "edge DNS did not answer for " + GLUE_US in warnings[0]
    assert len(edge.received) == 6  # still asked on every refresh

    edge.mode = "answer"
    now[0] += 10
    await directory.peers_for("app.cloud.example.com")
    assert f"edge DNS answers for {GLUE_US} again" in caplog.text


async def test_edge_outage_without_history_names_the_failure(dns_net: DnsNet) -> None:
    directory = dns_net.directory(["us"], edge_servers=[("127.0.0.4", dns_net.port)])  # nothing listens
    [peer] = await directory.peers_for("app.cloud.example.com")
    assert peer.addresses == ()
    assert peer.error == f"glue {GLUE_US}: 127.0.0.4:{dns_net.port} connection refused"


async def test_no_edge_servers_configured(dns_net: DnsNet) -> None:
    directory = dns_net.directory(["us"], edge_servers=[])
    [peer] = await directory.peers_for("app.cloud.example.com")
    assert peer.error == f"glue {GLUE_US}: no EDGE_DNS_SERVERS configured"


async def test_notify_targets_are_first_server_of_each_resolved_peer(dns_net: DnsNet) -> None:
    await dns_net.edge({"us": "127.0.0.2", "za": "127.0.0.3"})
    directory = dns_net.directory(["us", "za", "ap"])
    assert await directory.notify_targets() == [("127.0.0.2", dns_net.port), ("127.0.0.3", dns_net.port)]


async def test_a_slow_resolver_for_an_edge_servers_name_costs_the_timeout_not_more(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """EDGE_DNS_SERVERS may name a host; its lookup went through the system resolver with no deadline
    (a glue lookup with timeout 2 s took 20 s behind a slow resolver)."""
    loop = asyncio.get_running_loop()

    async def slow_resolver(*args: object, **kwargs: object) -> list[object]:
        await asyncio.sleep(30)
        return []

    monkeypatch.setattr(loop, "getaddrinfo", slow_resolver)
    zone = parse_dns_zones("example.com:cloud.example.com:30")[0]
    directory = PeerDirectory([zone], "eu", ["us"], "gslb-ns-", [("edge.example.net", 53)], timeout=0.3)
    started = loop.time()
    [peer] = await directory.peers(zone)
    assert loop.time() - started < 1.5
    assert peer.error == (
        "glue gslb-ns-us-cloud.example.com: edge.example.net:53 edge.example.net did not resolve within 0.3s"
    )
