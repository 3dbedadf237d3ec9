"""`gslb decommission`: a cluster leaving for good leaves the edge delegation, for good.

The running clusters keep every NS name that still has glue (they never drop a peer on their own), so
without this a dead cluster's name and address stay in the parent zone and resolvers keep being sent to
a server that is gone.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping

import pytest

from tests.e2e.multicluster.world import ZONE, Cluster, a_set, ask, glue_name, ips, manifest
from tests.support.instance import ROOT

pytestmark = pytest.mark.e2e
HOST = "decommission.cloud.example.com"


async def decommission(env: Mapping[str, str], *args: str) -> tuple[int, str, str]:
    """Run `gslb decommission` with a cluster's settings, as its operator would."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app", "decommission", *args,
        cwd=ROOT, env=dict(env), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def glue(world: Cluster, tag: str) -> frozenset[str] | None:
    return a_set(await ask(world.edge_server, glue_name(tag)))


async def test_a_dead_cluster_is_withdrawn_from_another_and_stays_out(cluster) -> None:
    world = await cluster("eu", "us", "za")
    await world.apply(manifest("test-gslb", HOST, {"type": "roundRobin"}))
    await world.converge(HOST, ips("eu", "us", "za"))
    za = world.members.pop("za")
    await za.instance.stop()  # the za cluster is gone for good; eu and us still list it as a peer

    # us's settings, plus a zone whose parent the edge does not serve: that zone fails, the other
    # is still withdrawn and said to be (the tag is compared as DNS compares names).
    env = {
        **world.members["us"].instance.env,
        "DNS_ZONES": f"example.com:{ZONE}:30;example.net:cloud.example.net:30",
    }
    code, out, err = await decommission(env, "--geo-tag", "ZA")

    assert code == 1, out + err
    assert f"did delete A {glue_name('za')} 127.0.0.4" in out
    assert f"did update NS {ZONE}:" in out
    assert err.splitlines()[-1].startswith("error: cannot withdraw za from cloud.example.net: "), err
    assert await world.delegated_names() == {glue_name("eu"), glue_name("us")}
    assert await glue(world, "za") is None
    # eu and us re-check the delegation every second: over three rounds neither puts za back.
    for _ in range(6):
        await asyncio.sleep(0.5)
        assert await world.delegated_names() == {glue_name("eu"), glue_name("us")}
    # A resolver is referred to eu and us only, and both answer without za's targets once their
    # peer lookups notice it is gone.
    await world.converge(HOST, ips("eu", "us"), timeout=15)


async def test_a_cluster_withdraws_itself_after_stopping(cluster) -> None:
    world = await cluster("eu", "us")
    eu = world.members.pop("eu")
    await eu.instance.stop()

    code, out, err = await decommission(eu.instance.env, "--dry-run")
    assert code == 0, out + err
    assert f"would delete A {glue_name('eu')} 127.0.0.2" in out
    assert await world.delegated_names() == {glue_name("eu"), glue_name("us")}  # a dry run changes nothing

    code, out, err = await decommission(eu.instance.env)
    assert code == 0, out + err
    assert "stop it first" in err  # the reminder, for a cluster withdrawing itself
    assert await world.delegated_names() == {glue_name("us")}
    assert await glue(world, "eu") is None
    assert await glue(world, "us") == {"127.0.0.3"}

    code, out, _ = await decommission(eu.instance.env)  # again: nothing left to do
    assert code == 0
    assert out == f"{ZONE} (in example.com): eu is not in the delegation\n"

    # The last cluster out removes the delegation itself.
    us = world.members.pop("us")
    await us.instance.stop()
    code, out, err = await decommission(us.instance.env)
    assert code == 0, out + err
    assert f"did delete NS {ZONE} {glue_name('us')}" in out
    assert await world.delegated_names() == frozenset()


async def test_bad_requests_change_nothing(cluster) -> None:
    world = await cluster("eu", "us")
    env = world.members["us"].instance.env

    code, _, err = await decommission(env, "--geo-tag", "")  # an unset variable in a script
    assert (code, err) == (1, "error: --geo-tag is empty: name the cluster to withdraw\n")
    code, _, err = await decommission(env, "--geo-tag", "eu.")
    assert (code, err) == (1, "error: --geo-tag 'eu.': letters, digits and '-' only\n")
    code, _, err = await decommission({**env, "DNS_ZONES": ""}, "--geo-tag", "eu")
    assert code == 1 and "DNS_ZONES names no zone" in err, err
    code, _, err = await decommission(env, "--zone", "other.example.com", "--geo-tag", "eu")
    assert code == 1
    assert err == ("error: not a zone in DNS_ZONES: other.example.com (configured: cloud.example.com)\n")
    code, _, err = await decommission({**env, "EDGE_DNS_TYPE": "none"}, "--geo-tag", "eu")
    assert code == 1
    assert "EDGE_DNS_TYPE is none" in err
    code, _, err = await decommission({**env, "RFC2136_HOST": "127.0.0.9:1"}, "--geo-tag", "eu")
    assert code == 1
    *retries, last = err.splitlines()
    assert last.startswith("error: cannot withdraw eu from cloud.example.com: "), err
    assert len(retries) == 3 and all(r.startswith("WARNING: rfc2136 records failed") for r in retries)
    assert await world.delegated_names() == {glue_name("eu"), glue_name("us")}
