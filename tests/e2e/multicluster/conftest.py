"""The `cluster` fixture: several real pygslb clusters behind a real BIND9 edge (see world.py)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from tests.e2e.multicluster.world import Cluster, start_cluster
from tests.support.bind9 import require_named

ClusterFactory = Callable[..., Awaitable[Cluster]]


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[ClusterFactory]:
    """`await cluster("eu", "us"[, "za"], **env)` → a running, delegated Cluster, stopped at teardown."""
    require_named()
    async with contextlib.AsyncExitStack() as stack:

        async def make(*tags: str, **env: str) -> Cluster:
            return await stack.enter_async_context(start_cluster(tmp_path, tags or ("eu", "us"), **env))

        yield make
