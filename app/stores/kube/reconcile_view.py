"""The Gslb store as the reconciler and its controller see it in kubernetes mode: reads from the informers.

The REST API needs read-your-writes, so `KubeGslbStore.get` always asks the API server; a reconcile is
triggered by the watch, whose informer already holds the object, so it reads from there (cached.py
says why that is safe) and writes its status in one conditional PUT. With this, a resync of an
unchanged Gslb makes no request at all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from app.domain.gslb import Gslb, GslbStatus
from app.stores.base import ObjectKey, WatchEvent
from app.stores.kube.store import KubeGslbStore


class ReconcilerView:
    """`GslbStore` over a `KubeGslbStore`: cached `get` and `write_status`, everything else passed on."""

    def __init__(self, store: KubeGslbStore) -> None:
        self.store = store

    async def start(self) -> None:
        await self.store.start()

    async def close(self) -> None:
        await self.store.close()

    async def get(self, key: ObjectKey) -> Gslb:
        return await self.store.get_cached(key)

    async def list(self, group: str, namespace: str | None = None) -> tuple[list[Gslb], str]:
        """From the informer once it has listed (the controller's start-up needs no second LIST of
        every Gslb); the resourceVersion is not known there and comes back empty."""
        cached = self.store.list_cached(group) if namespace is None else None
        if cached is None:
            return await self.store.list(group, namespace)
        return cached, ""

    async def create(self, gslb: Gslb, *, dry_run: bool = False) -> Gslb:
        return await self.store.create(gslb, dry_run=dry_run)

    async def update(self, gslb: Gslb, *, dry_run: bool = False) -> Gslb:
        return await self.store.update(gslb, dry_run=dry_run)

    async def update_status(
        self,
        key: ObjectKey,
        status: GslbStatus,
        resource_version: str | None = None,
        *,
        dry_run: bool = False,
    ) -> Gslb:
        return await self.store.update_status(key, status, resource_version, dry_run=dry_run)

    async def write_status(self, key: ObjectKey, status: GslbStatus) -> None:
        await self.store.write_status_cached(key, status)

    async def delete(
        self,
        key: ObjectKey,
        resource_version: str | None = None,
        *,
        dry_run: bool = False,
        propagation: str | None = None,
    ) -> Gslb:
        return await self.store.delete(key, resource_version, dry_run=dry_run, propagation=propagation)

    def watch(self) -> AsyncIterator[WatchEvent]:
        return self.store.watch()
