"""What peers answered is kept per host only while some Gslb serves that host."""

from __future__ import annotations

import asyncio
from pathlib import Path

from app.stores.base import ObjectKey
from app.stores.sqlite import SqliteStore
from tests.controller.conftest import FixedPeer, controller_with_peers
from tests.support.gslb_factory import make_gslb
from tests.support.instance import eventually


async def test_hosts_no_gslb_serves_any_more_are_forgotten(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "data")
    await store.start()
    controller = controller_with_peers(
        store,
        reconciled_by=FixedPeer("10.1.0.1"),
        refreshed_by=(peer := FixedPeer("10.1.0.1")),
        refresh_seconds=0.02,
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
