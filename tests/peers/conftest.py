"""A small DNS world on loopback: an edge server on 127.0.0.1:P and peer clusters on 127.0.0.x:P.

All share one port P on different loopback addresses, which is exactly k8gb's peer rule (a peer is
asked at its glue address on the edge server's port). Responders stop with the test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.domain.zones import ZoneConfig
from app.peers.discovery import PeerDirectory
from tests.support.dns_responder import Responder, serve, shared_port

ZONE = ZoneConfig(parent_zone="example.com", load_balanced_zone="cloud.example.com", neg_ttl=30)
HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5")


class DnsNet:
    """Starts responders on the shared port; `edge()` answers the glue names of the given peers."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.responders: list[Responder] = []

    async def start(self, host: str, **kwargs: Any) -> Responder:
        responder = await serve(Responder(**kwargs), host, self.port)
        self.responders.append(responder)
        return responder

    async def edge(self, glue: dict[str, str], host: str = "127.0.0.1", **kwargs: Any) -> Responder:
        """glue: peer tag -> address, published as gslb-ns-<tag>-cloud.example.com."""
        records = {ZONE.glue_name("gslb-ns-", tag): [address] for tag, address in glue.items()}
        return await self.start(host, records=records, **kwargs)

    def directory(self, peer_tags: list[str], **kwargs: Any) -> PeerDirectory:
        kwargs.setdefault("edge_servers", [("127.0.0.1", self.port)])
        kwargs.setdefault("timeout", 2.0)
        return PeerDirectory([ZONE], "eu", peer_tags, "gslb-ns-", **kwargs)

    async def close(self) -> None:
        for responder in self.responders:
            await responder.close()


@pytest.fixture
async def dns_net() -> AsyncIterator[DnsNet]:
    net = DnsNet(await shared_port(HOSTS))
    yield net
    await net.close()
