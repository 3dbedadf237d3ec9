"""k8gb's TestFullFailover, step by step, on two clusters with primaryGeoTag eu: every step is what
each cluster answers directly and what a client gets through the BIND9 edge's delegation."""

from __future__ import annotations

import pytest

from tests.e2e.multicluster.world import ips, manifest

pytestmark = pytest.mark.e2e
HOST = "failover.cloud.example.com"


async def test_full_failover(cluster) -> None:
    world = await cluster("eu", "us")
    await world.apply(manifest("failover-gslb", HOST, {"type": "failover", "primaryGeoTag": "eu"}))

    # Both up: the primary's targets everywhere, the secondary's own included nowhere.
    await world.converge(HOST, ips("eu"))
    await world.converge(f"localtargets-{HOST}", {"eu": ips("eu"), "us": ips("us")})

    # The secondary goes down: nothing changes for clients.
    await world.stop_backend("us")
    await world.converge(f"localtargets-{HOST}", {"eu": ips("eu"), "us": None})
    await world.converge(HOST, ips("eu"))

    # The primary goes down too: no healthy target anywhere, NXDOMAIN everywhere.
    await world.stop_backend("eu")
    await world.converge(HOST, None)

    # The secondary comes back: it takes over, on both clusters.
    await world.start_backend("us")
    await world.converge(HOST, ips("us"))

    # The primary comes back: traffic returns to it, on both clusters.
    await world.start_backend("eu")
    await world.converge(HOST, ips("eu"))


async def test_primary_down_fails_over_and_back(cluster) -> None:
    """The chainsaw failover playground: both answer eu; stop eu → us everywhere; restore → eu."""
    world = await cluster("eu", "us")
    await world.apply(manifest("failover-gslb", HOST, {"type": "failover", "primaryGeoTag": "eu"}))
    await world.converge(HOST, ips("eu"))

    await world.stop_backend("eu")
    await world.converge(HOST, ips("us"))
    await world.start_backend("eu")
    await world.converge(HOST, ips("eu"))
