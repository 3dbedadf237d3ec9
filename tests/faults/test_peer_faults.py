"""A peer cluster is down, silent, refuses, or answers garbage while Gslbs are written and reconciled.

The edge DNS server (127.0.0.1:P) publishes the peer's glue, the peer cluster's DNS server answers
on 127.0.0.2:P (k8gb's rule: a peer is asked at its glue address on the edge's port), both real UDP
responders this test controls. While the peer misbehaves it is skipped, as k8gb skips a peer it
cannot resolve: DNS keeps answering with this cluster's own targets, each Gslb's status.peers[]
says why, the metrics count the failed queries, and the peer is asked no more often than the refresh
interval. When it answers again its targets come back, and no Gslb is lost or duplicated.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import dns.flags
import dns.message
import dns.rdatatype
import dns.rrset
import httpx
import pytest

from tests.support import fleet, tally
from tests.support.dns_responder import Responder, serve, shared_port
from tests.support.instance import a_records, eventually, running

EDGE, PEER = "127.0.0.1", "127.0.0.2"
PEER_TAG = "us"
PEER_TARGET = "10.1.0.1"
REFRESH_SECONDS = 0.5
FAULT_SECONDS = 4.0
WITH_PEER = fleet.EXPOSED | {PEER_TARGET}


class PeerCluster(Responder):
    """A peer's DNS server: every `localtargets-<host>` of the zone answers the peer's one target."""

    def respond(self, query: dns.message.Message) -> dns.message.Message:
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        if self.mode != "answer" or not name.startswith("localtargets-"):
            return super().respond(query)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if question.rdtype == dns.rdatatype.A:
            response.answer.append(dns.rrset.from_text(question.name, 30, "IN", "A", PEER_TARGET))
        return response


class World:
    """The edge and one peer on a shared port; the peer can be stopped and started again."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.edge = Responder(records={f"gslb-ns-{PEER_TAG}-{fleet.ZONE}": [PEER]})
        self.peer = PeerCluster()

    async def start(self) -> World:
        await serve(self.edge, EDGE, self.port)
        await serve(self.peer, PEER, self.port)
        return self

    async def restart_peer(self) -> None:
        received = self.peer.received
        self.peer = PeerCluster(received=received)
        await serve(self.peer, PEER, self.port)

    async def close(self) -> None:
        await self.peer.close()
        await self.edge.close()


@pytest.fixture
async def world() -> AsyncIterator[World]:
    net = await World(await shared_port([EDGE, PEER])).start()
    yield net
    await net.close()


async def peer_status(client: httpx.AsyncClient, name: str) -> dict[str, Any] | None:
    response = await client.get(f"{fleet.COLLECTION}/{name}")
    peers = (response.json().get("status") or {}).get("peers") or []
    return next((p for p in peers if p["geoTag"] == PEER_TAG), None)


async def peer_error(client: httpx.AsyncClient, name: str) -> bool:
    found = await peer_status(client, name)
    return found is not None and bool(found.get("error"))


def asked(world: World) -> Counter[str]:
    return Counter(world.peer.names_asked())


@pytest.mark.parametrize("kind", ["down", "silent", "refuse", "garbage"])
async def test_peer_fault_is_skipped_reported_and_recovered(
    tmp_path: Path, services_file: str, world: World, kind: str
) -> None:
    settings = fleet.settings(
        services_file,
        EXT_GSLB_CLUSTERS_GEO_TAGS=PEER_TAG,
        EDGE_DNS_SERVERS=f"{EDGE}:{world.port}",
        PEER_REFRESH_SECONDS=str(REFRESH_SECONDS),
    )
    async with (
        running(tmp_path, **settings) as gslb,
        httpx.AsyncClient(base_url=gslb.api, timeout=10) as client,
        fleet.Writer(client, f"peer-{kind}", pause=0.1) as writer,
    ):
        await eventually(lambda: writer.has_acked(3), True)
        first = writer.acked[0]
        host = fleet.host_of(first)
        await eventually(lambda: a_records(gslb.dns, host), WITH_PEER)
        errors = "pygslb_peer_queries_total"
        before = fleet.metric(await fleet.metrics(client), errors, geotag=PEER_TAG, result="error")

        if kind == "down":
            await world.peer.close()
        else:
            world.peer.mode = kind
        tally.add("faults", f"peer {kind}")
        loop = asyncio.get_running_loop()
        started = loop.time()
        counted_before = asked(world)

        # Skipped: DNS answers with this cluster's targets alone; status and metrics say why.
        await eventually(lambda: a_records(gslb.dns, host), fleet.EXPOSED)
        await eventually(lambda: peer_error(client, first), True)
        report = await peer_status(client, first)
        assert report is not None and report["targets"] == []
        during = len(writer.acked)
        await eventually(lambda: writer.has_acked(during + 1), True)
        await eventually(lambda: a_records(gslb.dns, fleet.host_of(writer.acked[during])), fleet.EXPOSED)
        await asyncio.sleep(max(0.0, FAULT_SECONDS - (loop.time() - started)))
        window = loop.time() - started
        counted = asked(world) - counted_before
        after = fleet.metric(await fleet.metrics(client), errors, geotag=PEER_TAG, result="error")
        reconciled_hosts = len(writer.acked)

        if kind == "down":
            await world.restart_peer()
        else:
            world.peer.mode = "answer"
        await eventually(lambda: a_records(gslb.dns, host), WITH_PEER)
        await eventually(lambda: peer_error(client, first), False)
        await writer.stop()
        assert set(writer.statuses) == {201} and not writer.unknown, writer.statuses
        await fleet.check_converged(client, gslb, writer.acked, expected=WITH_PEER)

    print(
        f"peer {kind}: {counted[f'localtargets-{host}']} queries for one host in {window:.1f}s, "
        f"{after - before:.0f} failed peer queries over {reconciled_hosts} Gslbs"
    )
    # Counted in the metrics by the reconciles that skipped the peer: a few per Gslb, not a loop.
    assert 1 <= after - before <= 4 * reconciled_hosts, f"{after - before} failed peer queries"
    # Asked at the refresh pace (plus the odd reconcile), never in a tight loop.
    bound = window / REFRESH_SECONDS + 4
    if kind != "down":
        assert counted[f"localtargets-{host}"] <= bound, f"{counted} in {window:.1f}s"
        assert counted[f"localtargets-{host}"] >= 1
    tally.add("faults", "writes acknowledged during faults", len(writer.acked))
