"""A real controller on a real SQLite store and built-in zone table, without HTTP, for pipeline tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


@dataclass(frozen=True)
class Answer:
    geo_tag: str
    targets: list[str]
    error: str | None = None


class FixedPeer:
    """A peer source: cluster "us" answers `targets` for every host; remembers what it was told to forget."""

    def __init__(self, *targets: str) -> None:
        self.targets = list(targets)
        self.forgotten: list[str] = []

    def forget(self, host: str) -> None:
        self.forgotten.append(host)

    async def localtargets(self, host: str) -> Mapping[str, Answer]:
        return {"us": Answer("us", self.targets)}


def controller_with_peers(
    store: SqliteStore, *, reconciled_by: Any, refreshed_by: Any, refresh_seconds: float
) -> Controller:
    """A controller over `store` whose reconciles ask `reconciled_by` and whose refresh rounds ask
    `refreshed_by` (peer sources: `localtargets(host)` and `forget(host)`)."""
    metrics = ControllerMetrics(CollectorRegistry())
    zone = ZoneTable(ZONES, ns_names={"cloud.example.com": ["gslb-ns-eu-cloud.example.com"]})
    reconciler = Reconciler(
        store=store,
        servers=SpecServerSource(),
        health=SwitchableHealth(),
        exposed=StaticExposedIps(["10.0.0.1"]),
        sink=ZoneSink(zone, ZONES),
        geo_tag="eu",
        zones=ZONES,
        metrics=metrics,
        peers=reconciled_by,
    )
    return Controller(
        store=store,
        reconciler=reconciler,
        metrics=metrics,
        peers=refreshed_by,
        peer_refresh_seconds=refresh_seconds,
    )
