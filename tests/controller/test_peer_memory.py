"""What peers answered is kept per host only while some Gslb serves that host."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry

from app.controller.embedded import SpecServerSource, StaticExposedIps, ZoneSink
from app.controller.metrics import ControllerMetrics
from app.controller.reconcile import Reconciler
from app.controller.runner import Controller
from app.dnsserver.zonetable import ZoneTable
from app.stores.base import ObjectKey
from app.stores.sqlite import SqliteStore
from tests.controller.conftest import ZONES, SwitchableHealth
from tests.support.gslb_factory import make_gslb
from tests.support.instance import eventually


@dataclass(frozen=True)
class Answer:
    geo_tag: str
    targets: list[str]
    error: str | None = None


class OnePeer:
    """A peer cluster "us" serving every host from 10.1.0.1."""

    def __init__(self) -> None:
        self.forgotten: list[str] = []

    def forget(self, host: str) -> None:
        self.forgotten.append(host)

    async def localtargets(self, host: str) -> Mapping[str, Answer]:
        return {"us": Answer("us", ["10.1.0.1"])}


async def test_hosts_no_gslb_serves_any_more_are_forgotten(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "data")
    await store.start()
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
        peers=OnePeer(),
    )
    peer = OnePeer()
    controller = Controller(
        store=store, reconciler=reconciler, metrics=metrics, peers=peer, peer_refresh_seconds=0.02
    )
    await controller.start()

    async def remembered() -> list[str]:
        await controller.wait_idle()
        return sorted(controller._peer_seen)  # the memory a long-running controller holds

    try:
        for i in range(20):
            await store.create(make_gslb(f"app-{i}", host=f"App-{i}.cloud.example.com"))
        await eventually(remembered, [f"app-{i}.cloud.example.com" for i in sorted(range(20), key=str)])
        for i in range(10):
            await store.delete(ObjectKey.of(make_gslb(f"app-{i}")))
        kept = make_gslb("app-10", host="moved.cloud.example.com")
        current = await store.get(ObjectKey.of(kept))
        kept.metadata.resource_version = current.metadata.resource_version
        await store.update(kept)
        expected = sorted(["moved.cloud.example.com", *(f"app-{i}.cloud.example.com" for i in range(11, 20))])
        await eventually(remembered, expected)
        await asyncio.sleep(0.1)  # peer refreshes come and go: they add nothing back
        assert await remembered() == expected
        gone = [f"app-{i}.cloud.example.com" for i in range(11)]  # the peer source forgets them too
        assert sorted(set(peer.forgotten)) == sorted(gone)
    finally:
        await controller.stop(grace=2)
        await store.close()
