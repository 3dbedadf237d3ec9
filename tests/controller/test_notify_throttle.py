"""NOTIFYs hasten reconciles without letting whoever sends them drive the controller: anyone can send
one (a peer's comes from wherever its controller's traffic leaves its cluster, so the source proves
nothing). 200 NOTIFYs in a burst used to cost 200 reconciles of every Gslb in the zone."""

from __future__ import annotations

import asyncio

from app.controller.runner import NOTIFY_INTERVAL, ZONE_NOTIFY_INTERVAL
from app.domain.gslb import Gslb
from app.domain.health import ServiceState
from tests.support.gslb_factory import gslb_body

from .conftest import Harness

ZONE = "cloud.example.com"


async def settled(harness: Harness, count: int) -> int:
    """Wait until the controller has done `count` reconciles and is idle; returns the total."""
    async with asyncio.timeout(10):
        while harness.controller.reconciles < count or len(harness.controller.queue):
            await asyncio.sleep(0.01)
    return harness.controller.reconciles


async def test_a_burst_of_notifies_costs_one_reconcile_now_and_one_at_the_end(harness: Harness) -> None:
    harness.health.states[("test-gslb", "frontend")] = ServiceState.HEALTHY
    for name in ("a", "b"):
        body = gslb_body(name, host=f"{name}.{ZONE}", service="frontend")
        await harness.store.create(Gslb.model_validate(body))
    base = await settled(harness, 2)
    loop = asyncio.get_running_loop()

    started = loop.time()
    for _ in range(200):  # a known host's localtargets: only its Gslb, once now, once deferred
        harness.controller.notified(ZONE, f"localtargets-a.{ZONE}")
    after_host = await settled(harness, base + 1)
    assert after_host == base + 1
    await asyncio.sleep(NOTIFY_INTERVAL - (loop.time() - started) + 0.3)
    assert await settled(harness, base + 2) == base + 2  # the deferred one: nothing is dropped

    for _ in range(200):  # names nobody here serves: nothing
        harness.controller.notified(ZONE, f"localtargets-nobody-{_}.{ZONE}")
    await asyncio.sleep(0.2)
    assert harness.controller.reconciles == base + 2

    started = loop.time()
    for _ in range(200):  # the apex: every Gslb in the zone, once now, once at the interval's end
        harness.controller.notified(ZONE, ZONE)
    assert await settled(harness, base + 4) == base + 4
    await asyncio.sleep(ZONE_NOTIFY_INTERVAL - (loop.time() - started) + 0.3)
    assert await settled(harness, base + 6) == base + 6
    assert harness.metrics.notifies_received._value.get() == 600


async def test_a_notify_finds_a_host_written_in_capitals(harness: Harness) -> None:
    """DNS names compare case-insensitively; a NOTIFY's name arrives lowercased."""
    harness.health.states[("test-gslb", "frontend")] = ServiceState.HEALTHY
    body = gslb_body("caps", host=f"App.{ZONE}", service="frontend")
    await harness.store.create(Gslb.model_validate(body))
    base = await settled(harness, 1)
    harness.controller.notified(ZONE, f"localtargets-app.{ZONE}")
    assert await settled(harness, base + 1) == base + 1
