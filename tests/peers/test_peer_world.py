"""The whole peer path against real servers: BIND9 as the edge DNS holding the glue, and pygslb's
own DnsServer as each peer cluster's DNS, all on one port on different loopback addresses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from app.dnsserver.server import DnsServer
from app.dnsserver.zonetable import ZoneTable
from app.domain.endpoint import Changes, Endpoint
from app.peers.discovery import PeerDirectory
from app.peers.notify import send_notify
from app.peers.query import PeerResolver
from tests.peers.conftest import ZONE
from tests.support.bind9 import Bind9, require_named, zone_text
from tests.support.dns_responder import shared_port

HOST = f"app.{ZONE.load_balanced_zone}"
LOCALTARGETS = f"localtargets-{HOST}"
GLUE = {"us": "127.0.0.2", "za": "127.0.0.3"}


@dataclass
class World:
    port: int
    edge: Bind9
    peers: dict[str, DnsServer]
    notified: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    def resolver(self) -> PeerResolver:
        directory = PeerDirectory(
            [ZONE], "eu", ["eu", "us", "za"], "gslb-ns-", [("127.0.0.1", self.port)], 1.0
        )
        return PeerResolver(directory, timeout=2.0)

    def publish(self, tag: str, targets: tuple[str, ...]) -> None:
        record = Endpoint(LOCALTARGETS, targets, "A", 30)
        self.peers[tag].table.apply_now(ZONE.load_balanced_zone, Changes(create=(record,)))


@pytest.fixture
async def world() -> AsyncIterator[World]:
    require_named()
    port = await shared_port(["127.0.0.1", *GLUE.values()])
    delegation = "".join(
        f"cloud IN NS gslb-ns-{tag}-cloud\ngslb-ns-{tag}-cloud IN A {ip}\n" for tag, ip in GLUE.items()
    )
    async with Bind9({"example.com": zone_text("example.com", records=delegation)}, port=port) as edge:
        world = World(port, edge, {})
        for tag, ip in GLUE.items():
            names = [ZONE.glue_name("gslb-ns-", t) for t in GLUE]
            table = ZoneTable([ZONE], {ZONE.load_balanced_zone: names})
            world.notified[tag] = notes = []
            server = DnsServer(
                table, ip, port, on_notify=lambda zone, name, notes=notes: notes.append((zone, name))
            )
            await server.start()
            world.peers[tag] = server
        try:
            yield world
        finally:
            for server in world.peers.values():
                await server.stop()


async def test_peer_targets_through_bind_edge_and_pygslb_peers(world: World) -> None:
    resolver = world.resolver()
    world.publish("us", ("10.2.0.2", "10.2.0.1"))

    results = await resolver.localtargets(HOST)
    assert {tag: (r.targets, r.error) for tag, r in results.items()} == {
        "us": (["10.2.0.1", "10.2.0.2"], None),
        "za": ([], None),  # za is not healthy for the host: NXDOMAIN, which is not an error
    }

    world.publish("za", ("10.3.0.1",))
    assert (await resolver.localtargets(HOST))["za"].targets == ["10.3.0.1"]

    await world.peers["us"].stop()
    results = await resolver.localtargets(HOST)
    assert results["us"].targets == [] and "connection refused" in (results["us"].error or "")
    assert results["za"].targets == ["10.3.0.1"]


async def test_notify_reaches_pygslb_peers(world: World) -> None:
    directory = world.resolver().directory
    targets = await directory.notify_targets()
    assert targets == [("127.0.0.2", world.port), ("127.0.0.3", world.port)]

    results = await send_notify([LOCALTARGETS], targets, timeout=2.0)

    assert all(r.ok for r in results), results
    for tag in GLUE:
        assert world.notified[tag] == [(ZONE.load_balanced_zone, LOCALTARGETS)]
