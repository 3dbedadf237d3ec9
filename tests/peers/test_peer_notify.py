"""send_notify: RFC 1996 NOTIFY reaches real responders; failures come back as results, never raise."""

from __future__ import annotations

import asyncio

import dns.flags
import dns.opcode
import dns.rdatatype

from app.peers.notify import PeerNotifier, send_notify
from tests.peers.conftest import DnsNet

NAMES = ["localtargets-app.cloud.example.com", "localtargets-api.cloud.example.com"]


async def test_notify_reaches_every_peer_for_every_name(dns_net: DnsNet) -> None:
    us = await dns_net.start("127.0.0.2")
    za = await dns_net.start("127.0.0.3")
    peers = [("127.0.0.2", dns_net.port), ("127.0.0.3", dns_net.port)]

    results = await send_notify(NAMES, peers, timeout=2.0)

    assert sorted((r.name, r.server, r.ok) for r in results) == sorted(
        (name, f"{host}:{port}", True) for host, port in peers for name in NAMES
    )
    for responder in (us, za):
        assert sorted(responder.names_asked()) == sorted(NAMES)
        for message in responder.received:
            assert message.opcode() == dns.opcode.NOTIFY
            assert message.flags & dns.flags.AA and not message.flags & dns.flags.QR
            assert message.question[0].rdtype == dns.rdatatype.SOA


async def test_unreachable_or_refusing_peer_is_reported_not_raised(dns_net: DnsNet) -> None:
    await dns_net.start("127.0.0.2", mode="refuse")
    await dns_net.start("127.0.0.3", mode="silent")
    peers = [("127.0.0.2", dns_net.port), ("127.0.0.3", dns_net.port), ("127.0.0.4", dns_net.port)]

    results = await send_notify(NAMES[:1], peers, timeout=0.3)

    assert {r.server: r.error for r in results} == {
        f"127.0.0.2:{dns_net.port}": "answered REFUSED",
        f"127.0.0.3:{dns_net.port}": "no answer within 0.3s",
        f"127.0.0.4:{dns_net.port}": "connection refused",
    }


async def test_duplicates_are_sent_once(dns_net: DnsNet) -> None:
    us = await dns_net.start("127.0.0.2")
    peer = ("127.0.0.2", dns_net.port)
    results = await send_notify([NAMES[0], NAMES[0]], [peer, peer], timeout=2.0)
    assert len(results) == 1 and len(us.received) == 1


async def test_nothing_to_send() -> None:
    assert await send_notify([], [("127.0.0.2", 53)]) == []


async def test_notifier_sends_to_resolved_peers_without_blocking(dns_net: DnsNet) -> None:
    await dns_net.edge({"us": "127.0.0.2", "za": "127.0.0.3"})
    us = await dns_net.start("127.0.0.2")
    za = await dns_net.start("127.0.0.3", mode="silent")  # never answers: must not hold up the caller
    notifier = PeerNotifier(dns_net.directory(["us", "za"]), timeout=1.0)

    await notifier.notify(NAMES[:1])
    assert notifier._pending, "notify() returned while the sends are still in flight"
    await notifier.drain()

    assert us.names_asked() == NAMES[:1] and za.names_asked() == NAMES[:1]
    assert us.received[0].opcode() == dns.opcode.NOTIFY


async def test_notifier_close_cancels_sends(dns_net: DnsNet) -> None:
    await dns_net.edge({"us": "127.0.0.2"})
    await dns_net.start("127.0.0.2", mode="silent")
    notifier = PeerNotifier(dns_net.directory(["us"]), timeout=30)
    await notifier.notify(NAMES)
    async with asyncio.timeout(5):  # a send left running would take 30 s
        await notifier.close()
    assert not notifier._pending
