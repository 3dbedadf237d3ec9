"""A change that lands while a Gslb's first reconcile is running is not lost.

Found by the edge-provider fault test: the delegation recovered while a new Gslb was being reconciled
for the first time (not yet indexed by zone), so its status said "not delegated" until the next resync.
Held at the publish step with the harness's gated sink, the race is exact here.
"""

from __future__ import annotations

import asyncio

import pytest

from app.domain.health import ServiceState
from app.domain.zones import parse_dns_zones
from tests.controller.conftest import Harness, harness  # noqa: F401 - fixture
from tests.support.gslb_factory import make_gslb

SERVICE = ("test-gslb", "frontend-podinfo")
HOST = "roundrobin.cloud.example.com"


@pytest.mark.parametrize("harness", [{"requeue": 0}], indirect=True)  # no resync to hide a lost trigger
async def test_health_change_during_first_reconcile_is_reconciled(harness: Harness) -> None:  # noqa: F811
    harness.sink.gate = gate = asyncio.Event()
    await harness.store.create(make_gslb("race", dnsTtlSeconds=30))
    await harness.sink.entered.wait()  # the first reconcile has read health (NotFound) and is held
    harness.health.states[SERVICE] = ServiceState.HEALTHY
    harness.controller.service_changed(*SERVICE)
    gate.set()
    await harness.controller.wait_idle()
    zone = parse_dns_zones("example.com:cloud.example.com:30")[0]
    held = {e.dns_name: e.targets for e in await harness.zone.records(zone.load_balanced_zone)}
    assert held.get(HOST) == ("10.0.0.1",), held
