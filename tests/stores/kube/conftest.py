"""Fixtures of the kubernetes-mode tests: the emulated API server (tests/support/kmockapi.py) with the
chart's CRDs installed, a client configured from its kubeconfig, a started Gslb store, and a whole
kubernetes-mode controller (`replica`) built as one process would build it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from app.controller.metrics import ControllerMetrics
from app.controller.reconcile import Reconciler
from app.controller.runner import Controller
from app.settings import Settings
from app.stores.base import ObjectKey
from app.stores.kube.client import KubeClient, connect
from app.stores.kube.mode import KubeParts, build_kube_store
from app.stores.kube.store import KubeGslbStore
from app.stores.kube.triggers import GslbTriggers
from tests.support.kmockapi import KubeApi, load_yaml_documents, running_api

CRDS = Path(__file__).resolve().parents[3] / "chart" / "crds"
CRD_DOCUMENTS = load_yaml_documents(sorted(CRDS.glob("*.yaml")))  # parsed once per session


@pytest.fixture
async def kube_api(tmp_path: Path) -> AsyncIterator[KubeApi]:
    async with running_api(tmp_path) as api:
        api.install_crds(CRD_DOCUMENTS)
        yield api


@pytest.fixture
async def kube(kube_api: KubeApi) -> AsyncIterator[KubeClient]:
    client = await connect(str(kube_api.kubeconfig))
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def kube_store(kube: KubeClient) -> AsyncIterator[KubeGslbStore]:
    store = KubeGslbStore(kube)
    await store.start()
    try:
        yield store
    finally:
        await store.close()


def kube_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "cluster_geo_tag": "eu",
        "dns_zones": "example.com:cloud.example.com:30",
        "pod_namespace": "k8gb",
        **overrides,
    }
    return Settings(**values)


@dataclass
class Replica:
    """One controller process's kubernetes-mode parts, in-process."""

    parts: KubeParts
    controller: Controller
    triggers: GslbTriggers
    reconciled: list[ObjectKey] = field(default_factory=list)

    async def start(self) -> None:
        await self.parts.store.start()
        await self.parts.health.start()
        await self.triggers.start()
        await self.controller.start()

    async def stop(self) -> None:
        await self.controller.stop(grace=2)
        await self.triggers.stop()
        await self.parts.health.stop()
        await self.parts.store.close()


async def make_replica(kube: KubeClient, config: Settings) -> Replica:
    store = await build_kube_store(config, kube)
    parts = KubeParts.of(store, config)
    metrics = ControllerMetrics(CollectorRegistry())
    reconciler = Reconciler(
        store=parts.reconciler_store,
        servers=parts.servers,
        health=parts.health,
        exposed=parts.exposed,
        sink=parts.sink,
        geo_tag=config.cluster_geo_tag,
        zones=config.zones,
        metrics=metrics,
        migrator=parts.migrator,
    )
    controller = Controller(
        store=parts.reconciler_store, reconciler=reconciler, metrics=metrics, requeue_seconds=0, workers=2
    )
    triggers = parts.triggers(lambda key, reason: controller.queue.add(key, None, reason))
    replica = Replica(parts, controller, triggers)
    controller.on_reconciled = lambda key, outcome: replica.reconciled.append(key)
    return replica


@pytest.fixture
def replica_factory(kube: KubeClient) -> Callable[[], Awaitable[Replica]]:
    """Builds (not starts) one more replica on the shared client, as another process would be."""
    return lambda: make_replica(kube, kube_settings())


@pytest.fixture
async def replica(replica_factory: Callable[[], Awaitable[Replica]]) -> AsyncIterator[Replica]:
    running = await replica_factory()
    await running.start()
    try:
        yield running
    finally:
        await running.stop()
