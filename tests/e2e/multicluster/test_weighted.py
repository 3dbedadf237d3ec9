"""Weighted round robin: every cluster hands out every healthy target, ordered per query by weight;
a zero weight is always last. Asked ~1000 times of each cluster, the first answer follows the weights."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from tests.e2e.multicluster.world import EXPOSED, ask, ips, manifest

pytestmark = pytest.mark.e2e
HOST = "weighted.cloud.example.com"
QUERIES = 1000
BY_IP = {ip: tag for tag, ip in EXPOSED.items()}


async def orders(server: tuple[str, int], count: int) -> list[tuple[str, ...]]:
    """The answer order of `count` queries, as tags, asked 25 at a time."""
    seen: list[tuple[str, ...]] = []
    for start in range(0, count, 25):
        batch = await asyncio.gather(*(ask(server, HOST) for _ in range(min(25, count - start))))
        for response in batch:
            (rrset,) = response.answer
            seen.append(tuple(BY_IP[rr.address] for rr in rrset))
    return seen


async def test_weighted_round_robin_orders_by_weight(cluster) -> None:
    world = await cluster("eu", "us", "za")
    weights = {"eu": 80, "us": 20, "za": 0}
    await world.apply(manifest("test-gslb", HOST, {"type": "roundRobin", "weight": weights}))
    await world.converge(HOST, ips("eu", "us", "za"))

    for tag, member in world.members.items():
        seen = await orders(member.dns, QUERIES)
        first = Counter(order[0] for order in seen)
        assert all(order[-1] == "za" for order in seen), f"{tag}: zero weight not last: {Counter(seen)}"
        assert 0.72 <= first["eu"] / QUERIES <= 0.88, f"{tag}: first answers {first}"
        assert 0.12 <= first["us"] / QUERIES <= 0.28, f"{tag}: first answers {first}"

    # eu goes down: its weight goes with it, us leads every answer and za still trails.
    await world.stop_backend("eu")
    await world.converge(HOST, ips("us", "za"))
    for tag, member in world.members.items():
        assert set(await orders(member.dns, 100)) == {("us", "za")}, tag
