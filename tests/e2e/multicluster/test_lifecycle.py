"""Deleting a Gslb: everywhere → its host is gone everywhere (also through the edge); in one cluster
only → that cluster stops publishing its local targets and the others stop handing out its IPs."""

from __future__ import annotations

import pytest

from tests.e2e.multicluster.world import ips, manifest

pytestmark = pytest.mark.e2e
HOST = "lifecycle.cloud.example.com"
LOCAL = f"localtargets-{HOST}"


async def test_delete_everywhere_removes_every_record(cluster) -> None:
    world = await cluster("eu", "us")
    await world.apply(manifest("test-gslb", HOST, {"type": "roundRobin"}))
    await world.converge(HOST, ips("eu", "us"))

    await world.delete("test-gslb")

    await world.converge(HOST, None)
    await world.converge(LOCAL, None)


async def test_delete_in_one_cluster_withdraws_its_targets(cluster) -> None:
    world = await cluster("eu", "us", "za")
    await world.apply(manifest("test-gslb", HOST, {"type": "roundRobin"}))
    await world.converge(HOST, ips("eu", "us", "za"))

    await world.delete("test-gslb", on=["eu"])

    await world.converge(LOCAL, {"eu": None, "us": ips("us"), "za": ips("za")})
    await world.converge(HOST, {"eu": None, "us": ips("us", "za"), "za": ips("us", "za")})

    # Applying it again brings eu back into every answer.
    await world.apply(manifest("test-gslb", HOST, {"type": "roundRobin"}), on=["eu"])
    await world.converge(HOST, ips("eu", "us", "za"))
