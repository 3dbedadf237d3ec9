"""geoip: the same record everywhere, filtered per query by where the client is (EDNS0 CLIENT-SUBNET,
mapped through GEOIP_CIDRS): a client near eu gets eu's target, near us gets us's, unknown gets all."""

from __future__ import annotations

import pytest

from tests.e2e.multicluster.world import GEOIP_CIDRS, ips, manifest

pytestmark = pytest.mark.e2e
HOST = "geoip.cloud.example.com"
NEAR_EU, NEAR_US, ELSEWHERE = "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"


async def test_geoip_answers_by_client_subnet(cluster) -> None:
    world = await cluster("eu", "us", GEOIP_CIDRS=GEOIP_CIDRS)
    await world.apply(manifest("test-gslb", HOST, {"type": "geoip"}))
    await world.converge(HOST, ips("eu", "us"))  # no ECS, client 127.0.0.1: unknown, so all

    await world.converge(HOST, ips("eu"), ecs=NEAR_EU)
    await world.converge(HOST, ips("us"), ecs=NEAR_US)
    await world.converge(HOST, ips("eu", "us"), ecs=ELSEWHERE)
    await world.converge(HOST, ips("eu"), ecs="192.0.2.77/32")

    # eu goes down: a client near eu gets what is left rather than nothing.
    await world.stop_backend("eu")
    await world.converge(HOST, ips("us"), ecs=NEAR_EU)
    await world.converge(HOST, ips("us"), ecs=NEAR_US)
    await world.start_backend("eu")
    await world.converge(HOST, ips("eu"), ecs=NEAR_EU)
