"""k8gb's TestFullRoundRobin: every healthy cluster's targets everywhere; they shrink as backends stop
cluster by cluster and grow back as they return — asked of each cluster and through the BIND9 edge."""

from __future__ import annotations

import pytest

from tests.e2e.multicluster.world import ips, manifest

pytestmark = pytest.mark.e2e
HOST = "roundrobin.cloud.example.com"


async def test_round_robin_two_clusters(cluster) -> None:
    world = await cluster("eu", "us")
    await world.apply(manifest("test-gslb", HOST, {"type": "roundRobin"}))
    await world.converge(HOST, ips("eu", "us"))
    await world.converge(f"localtargets-{HOST}", {"eu": ips("eu"), "us": ips("us")})

    await world.stop_backend("eu")
    await world.converge(HOST, ips("us"))
    await world.converge(f"localtargets-{HOST}", {"eu": None, "us": ips("us")})

    await world.stop_backend("us")
    await world.converge(HOST, None)

    await world.start_backend("eu")
    await world.converge(HOST, ips("eu"))
    await world.start_backend("us")
    await world.converge(HOST, ips("eu", "us"))


async def test_round_robin_three_clusters(cluster) -> None:
    world = await cluster("eu", "us", "za")
    await world.apply(manifest("test-gslb", HOST, {"type": "roundRobin"}))
    await world.converge(HOST, ips("eu", "us", "za"))

    await world.stop_backend("eu")
    await world.converge(HOST, ips("us", "za"))
    await world.stop_backend("us")
    await world.converge(HOST, ips("za"))

    await world.start_backend("us")
    await world.converge(HOST, ips("us", "za"))
    await world.start_backend("eu")
    await world.converge(HOST, ips("eu", "us", "za"))
