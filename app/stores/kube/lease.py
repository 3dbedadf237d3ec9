"""Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it.

Every replica runs `LeaderElector.run`; the one holding the Lease reconciles, all of them serve the
API. A candidate takes the Lease when it is free, released, or expired — expiry is judged by the
candidate's own clock from when it last saw the record change (never by comparing clocks across
machines). Writes carry the Lease's resourceVersion, so two candidates cannot both win (409 loses).
The leader renews every `retry_period`; if it cannot renew within `renew_deadline` it stops leading
(before the `lease_duration` others wait, so two leaders never overlap). Stopping `run` releases the
Lease (empty holder, 1 s duration) so a successor takes over at once; a crashed leader is replaced
once `lease_duration` has passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from app.stores.kube.client import LEASE, KubeApiError, KubeClient, Obj

log = logging.getLogger("pygslb.kube.lease")

Callback = Callable[[], Awaitable[Any] | Any]


def _micro_time() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    def __init__(
        self,
        client: KubeClient,
        namespace: str,
        name: str,
        identity: str,
        *,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
    ) -> None:
        if not lease_duration > renew_deadline > retry_period > 0:
            raise ValueError("need lease_duration > renew_deadline > retry_period > 0")
        self.client = client
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.is_leader = False
        self.leader_identity: str | None = None
        self._observed: tuple[str, str] | None = None  # (holder, renewTime) last seen
        self._observed_at = 0.0
        self._last_renew = 0.0

    # --- the loop ---------------------------------------------------------------------------------

    async def run(self, on_started_leading: Callback, on_stopped_leading: Callback) -> None:
        """Campaign, lead while the Lease is held, and campaign again after losing it; until cancelled.

        `on_started_leading()` runs as a task while leading (cancelled when leadership is lost);
        `on_stopped_leading()` is called each time leadership is lost, not when this is cancelled (the
        caller is stopping; the Lease is released for the next leader).
        """
        try:
            while True:
                await self._acquire()
                work = asyncio.create_task(_call(on_started_leading), name="leader-work")
                try:
                    await self._renew_until_lost(work)
                finally:
                    self.is_leader = False
                    work.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await work
                await _call(on_stopped_leading)
        finally:
            await asyncio.shield(self._release())

    async def _acquire(self) -> None:
        loop = asyncio.get_running_loop()
        while not await self._try_acquire_or_renew():
            await asyncio.sleep(self.retry_period * random.uniform(1.0, 1.2))
        self.is_leader = True
        log.info("%s became the leader (lease %s/%s)", self.identity, self.namespace, self.name)
        self._last_renew = loop.time()

    async def _renew_until_lost(self, work: asyncio.Task[Any]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.retry_period)
            if await self._try_acquire_or_renew():
                self._last_renew = loop.time()
            elif loop.time() - self._last_renew >= self.renew_deadline:
                log.warning("%s lost the lease %s/%s", self.identity, self.namespace, self.name)
                return
            if work.done() and not work.cancelled() and work.exception() is not None:
                log.error("leader work failed: %r; stepping down", work.exception())
                return

    # --- one attempt ------------------------------------------------------------------------------

    def _spec(self, previous: Obj | None) -> Obj:
        now = _micro_time()
        spec = dict(previous or {})
        if spec.get("holderIdentity") != self.identity:
            spec["acquireTime"] = now
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + (1 if previous else 0)
        spec.update(
            holderIdentity=self.identity,
            leaseDurationSeconds=max(1, round(self.lease_duration)),
            renewTime=now,
        )
        return spec

    async def _try_acquire_or_renew(self) -> bool:
        loop = asyncio.get_running_loop()
        try:
            current = await self.client.get(LEASE, self.namespace, self.name)
        except KubeApiError as exc:
            if exc.status != 404:
                log.warning("reading lease %s/%s failed: %s", self.namespace, self.name, exc)
                return False
            fresh = self._spec(None)
            body: Obj = {
                "apiVersion": LEASE.api_version,
                "kind": LEASE.kind,
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": fresh,
            }
            try:
                await self.client.create(LEASE, self.namespace, body)
            except KubeApiError as create_exc:
                log.info("creating lease %s/%s lost: %s", self.namespace, self.name, create_exc)
                return False
            self._observe(self.identity, fresh["renewTime"], loop.time())
            return True

        spec: Obj = current.get("spec") or {}
        holder = str(spec.get("holderIdentity") or "")
        record = (holder, str(spec.get("renewTime") or ""))
        if record != self._observed:
            self._observe(*record, loop.time())
        duration = float(spec.get("leaseDurationSeconds") or self.lease_duration)
        held_by_other = holder and holder != self.identity
        if held_by_other and self._observed_at + duration > loop.time():
            return False
        current["spec"] = self._spec(spec)
        try:
            await self.client.replace(LEASE, self.namespace, self.name, current)
        except KubeApiError as exc:
            log.info("updating lease %s/%s lost: %s", self.namespace, self.name, exc)
            return False
        self._observe(self.identity, current["spec"]["renewTime"], loop.time())
        return True

    def _observe(self, holder: str, renew_time: str, at: float) -> None:
        self._observed = (holder, renew_time)
        self._observed_at = at
        self.leader_identity = holder or None

    async def _release(self) -> None:
        """Give the Lease up (if still ours) so a successor need not wait for it to expire."""
        if self._observed is None or self._observed[0] != self.identity:
            return
        try:
            current = await self.client.get(LEASE, self.namespace, self.name)
            if (current.get("spec") or {}).get("holderIdentity") != self.identity:
                return
            current["spec"].update(holderIdentity="", leaseDurationSeconds=1, renewTime=_micro_time())
            await self.client.replace(LEASE, self.namespace, self.name, current)
            log.info("%s released the lease %s/%s", self.identity, self.namespace, self.name)
        except KubeApiError as exc:
            log.warning("releasing lease %s/%s failed: %s", self.namespace, self.name, exc)
        self._observed = None


async def _call(callback: Callback) -> Any:
    result = callback()
    if inspect.isawaitable(result):
        return await result
    return result
