"""A real controller on a real SQLite store and built-in zone table, without HTTP, for pipeline tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from app.controller.embedded import SpecServerSource, StaticExposedIps, ZoneSink
from app.controller.metrics import ControllerMetrics
from app.controller.reconcile import Reconciler
from app.controller.runner import Controller
from app.dnsserver.zonetable import ZoneTable
from app.domain.health import ServiceState
from app.domain.zones import parse_dns_zones
from app.stores.sqlite import SqliteStore
from tests.support.otlp import global_otlp_receiver  # noqa: F401 - fixture

ZONES = parse_dns_zones("example.com:cloud.example.com:30")


@dataclass
class SwitchableHealth:
    """Health a test sets by hand: the pipeline reads it like probe results."""

    states: dict[tuple[str, str], ServiceState] = field(default_factory=dict)

    def state(self, namespace: str, name: str) -> ServiceState:
        return self.states.get((namespace, name), ServiceState.NOT_FOUND)


class GatedSink(ZoneSink):
    """A zone sink whose next publish waits for `release` (to pile up writes behind a running reconcile)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()

    async def publish(self, gslb, endpoints):
        if self.gate is not None:
            self.entered.set()
            gate, self.gate = self.gate, None
            await gate.wait()
        return await super().publish(gslb, endpoints)


@dataclass
class Harness:
    store: SqliteStore
    zone: ZoneTable
    health: SwitchableHealth
    sink: GatedSink
    controller: Controller
    metrics: ControllerMetrics


@pytest.fixture
async def harness(tmp_path: Path, request) -> AsyncIterator[Harness]:
    requeue = getattr(request, "param", {}).get("requeue", 30.0)
    store = SqliteStore(tmp_path / "data")
    await store.start()
    zone = ZoneTable(ZONES, ns_names={"cloud.example.com": ["gslb-ns-eu-cloud.example.com"]})
    health = SwitchableHealth()
    metrics = ControllerMetrics(CollectorRegistry())
    sink = GatedSink(zone, ZONES)
    reconciler = Reconciler(
        store=store,
        servers=SpecServerSource(),
        health=health,
        exposed=StaticExposedIps(["10.0.0.1"]),
        sink=sink,
        geo_tag="eu",
        zones=ZONES,
        metrics=metrics,
    )
    controller = Controller(
        store=store, reconciler=reconciler, metrics=metrics, requeue_seconds=requeue, workers=2
    )
    await controller.start()
    try:
        yield Harness(store, zone, health, sink, controller, metrics)
    finally:
        await controller.stop(grace=2)
        await store.close()
