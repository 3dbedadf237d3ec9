"""PeerResolver: every peer asked for localtargets-<host> at once; failures skip the peer, never raise."""

from __future__ import annotations

import logging

import dns.flags
import dns.message
import dns.rcode
import pytest

from app.peers.query import PeerResolver
from tests.peers.conftest import DnsNet
from tests.support.dns_responder import Gate

HOST = "app.cloud.example.com"
LOCALTARGETS = f"localtargets-{HOST}"


async def two_peers(dns_net: DnsNet, timeout: float = 2.0, **za: object) -> PeerResolver:
    """us on 127.0.0.2 answers two targets; za on 127.0.0.3 is started with `za` options."""
    await dns_net.edge({"us": "127.0.0.2", "za": "127.0.0.3"})
    await dns_net.start("127.0.0.2", records={LOCALTARGETS: ["10.2.0.2", "10.2.0.1"]})
    za.setdefault("records", {LOCALTARGETS: ["10.3.0.1"]})
    await dns_net.start("127.0.0.3", **za)
    return PeerResolver(dns_net.directory(["us", "za"]), timeout=timeout)


async def test_both_peers_answer_sorted_targets(dns_net: DnsNet) -> None:
    resolver = await two_peers(dns_net)
    results = await resolver.localtargets(HOST)
    assert {tag: (r.targets, r.error, r.server) for tag, r in results.items()} == {
        "us": (["10.2.0.1", "10.2.0.2"], None, f"127.0.0.2:{dns_net.port}"),
        "za": (["10.3.0.1"], None, f"127.0.0.3:{dns_net.port}"),
    }


async def test_queries_are_non_recursive_for_the_localtargets_name(dns_net: DnsNet) -> None:
    resolver = await two_peers(dns_net)
    us = dns_net.responders[1]
    await resolver.localtargets("App.Cloud.Example.com.")
    [query] = us.received
    assert query.question[0].name.to_text(omit_final_dot=True) == LOCALTARGETS
    assert not query.flags & dns.flags.RD


async def test_nxdomain_is_empty_not_an_error(dns_net: DnsNet) -> None:
    resolver = await two_peers(dns_net, records={})
    za = (await resolver.localtargets(HOST))["za"]
    assert (za.targets, za.error) == ([], None)


async def test_nodata_is_empty_not_an_error(dns_net: DnsNet) -> None:
    resolver = await two_peers(dns_net, records={LOCALTARGETS: []})
    za = (await resolver.localtargets(HOST))["za"]
    assert (za.targets, za.error) == ([], None)


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        pytest.param("garbage", "malformed response", id="garbage"),
        pytest.param("refuse", "answered REFUSED", id="refused"),
        pytest.param("servfail", "answered SERVFAIL", id="servfail"),
        pytest.param("silent", "no answer within 0.5s", id="silent"),
    ],
)
async def test_misbehaving_peer_is_skipped_with_reason(dns_net: DnsNet, mode: str, reason: str) -> None:
    resolver = await two_peers(dns_net, timeout=0.5 if mode == "silent" else 2.0, mode=mode)
    results = await resolver.localtargets(HOST)
    assert results["us"].targets == ["10.2.0.1", "10.2.0.2"] and results["us"].error is None
    za = results["za"]
    assert za.targets == []
    assert za.error is not None and za.error.startswith(f"127.0.0.3:{dns_net.port} {reason}")
    assert za.error.endswith("127.0.0.3:53 connection refused"), "then the port-53 fallback was tried"


async def test_peer_down_is_skipped(dns_net: DnsNet) -> None:
    await dns_net.edge({"us": "127.0.0.2", "za": "127.0.0.4"})  # nothing listens on 127.0.0.4
    await dns_net.start("127.0.0.2", records={LOCALTARGETS: ["10.2.0.1"]})
    results = await PeerResolver(dns_net.directory(["us", "za"]), timeout=2.0).localtargets(HOST)
    assert results["us"].targets == ["10.2.0.1"]
    assert (
        results["za"].error == f"127.0.0.4:{dns_net.port} connection refused; 127.0.0.4:53 connection refused"
    )


async def test_peer_without_glue_is_skipped(dns_net: DnsNet) -> None:
    await dns_net.edge({"us": "127.0.0.2"})
    await dns_net.start("127.0.0.2", records={LOCALTARGETS: ["10.2.0.1"]})
    results = await PeerResolver(dns_net.directory(["us", "za"])).localtargets(HOST)
    assert results["za"].targets == [] and "gslb-ns-za-cloud.example.com" in (results["za"].error or "")


async def test_host_outside_zones_asks_nobody(dns_net: DnsNet) -> None:
    resolver = await two_peers(dns_net)
    assert await resolver.localtargets("app.other.org") == {}
    assert all(not r.received for r in dns_net.responders)


async def test_peers_are_asked_concurrently(dns_net: DnsNet) -> None:
    """Both peers hold their answer until both queries have arrived: asked one after the other,
    the first would time out (the gate waits longer than the resolver)."""
    gate = Gate(size=2, patience=5.0)
    await dns_net.edge({"us": "127.0.0.2", "za": "127.0.0.3"})
    await dns_net.start("127.0.0.2", records={LOCALTARGETS: ["10.2.0.1"]}, gate=gate)
    await dns_net.start("127.0.0.3", records={LOCALTARGETS: ["10.3.0.1"]}, gate=gate)
    results = await PeerResolver(dns_net.directory(["us", "za"]), timeout=2.0).localtargets(HOST)
    assert {tag: r.targets for tag, r in results.items()} == {"us": ["10.2.0.1"], "za": ["10.3.0.1"]}
    assert gate.max_in_flight == 2


async def test_failure_is_logged_once_per_change(dns_net: DnsNet, caplog: pytest.LogCaptureFixture) -> None:
    resolver = await two_peers(dns_net, mode="refuse")
    za = dns_net.responders[2]
    caplog.set_level(logging.INFO, logger="app.peers.query")

    for _ in range(3):
        await resolver.localtargets(HOST)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "peer za skipped" in warnings[0].getMessage()

    za.mode = "answer"
    await resolver.localtargets(HOST)
    await resolver.localtargets(HOST)
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.INFO] == [
        f"peer za answers again (127.0.0.3:{dns_net.port})"
    ]


async def test_a_peer_failing_for_some_names_and_answering_others_is_logged_once(
    dns_net: DnsNet, caplog: pytest.LogCaptureFixture
) -> None:
    """A peer that does not serve one zone (REFUSED there) and answers the other flipped the log between
    "skipped" and "answers again" on every refresh: a WARNING a minute per host, for ever."""
    resolver = await two_peers(dns_net)
    za = dns_net.responders[2]
    answer = za.respond

    def refuse_the_other_zone(query: dns.message.Message) -> dns.message.Message:
        if "other" in query.question[0].name.to_text():
            response = dns.message.make_response(query)
            response.set_rcode(dns.rcode.REFUSED)
            return response
        return answer(query)

    za.respond = refuse_the_other_zone  # type: ignore[method-assign]
    caplog.set_level(logging.INFO, logger="app.peers.query")
    for _ in range(3):
        await resolver.localtargets("app.other.cloud.example.com")
        await resolver.localtargets(HOST)
    messages = [r.getMessage() for r in caplog.records if r.name == "app.peers.query"]
    assert len(messages) == 1 and "peer za skipped" in messages[0], messages


async def test_a_host_no_longer_served_does_not_keep_its_peer_failing(
    dns_net: DnsNet, caplog: pytest.LogCaptureFixture
) -> None:
    """A name that failed stayed in the peer's failing set once no Gslb asked for it: the peer counted
    as failing for good, so its recovery and its next outage went unlogged."""
    resolver = await two_peers(dns_net, mode="refuse")
    za = dns_net.responders[2]
    caplog.set_level(logging.INFO, logger="app.peers.query")
    await resolver.localtargets(HOST)
    await resolver.localtargets("gone.cloud.example.com")
    resolver.forget("gone.cloud.example.com")  # its Gslb was deleted
    za.mode = "answer"
    await resolver.localtargets(HOST)
    za.mode = "refuse"
    await resolver.localtargets(HOST)
    messages = [r.getMessage() for r in caplog.records if r.name == "app.peers.query"]
    assert [m.split(":")[0] for m in messages] == [
        "peer za skipped",
        "peer za answers again (127.0.0.3",
        "peer za skipped",
    ]
