"""Fixtures of the kubernetes-mode tests: the emulated API server (tests/support/kmockapi.py) with the
chart's CRDs installed, a client configured from its kubeconfig, and a started Gslb store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.stores.kube.client import KubeClient, connect
from app.stores.kube.store import KubeGslbStore
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
