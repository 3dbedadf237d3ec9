"""Drives the reconciler: list, watch, queue, workers, resync, backoff and the fast-convergence triggers.

Triggers, each enqueueing only the Gslbs it concerns:
- a store write (spec or k8gb annotation changed) → reconcile now, as a child of the writer's trace;
- a change of a service's health → the Gslbs whose hosts it backs;
- a DNS NOTIFY from a peer for `localtargets-<host>` → the Gslbs serving that host;
- the peer refresh loop seeing a peer's answer change → the Gslbs serving that host;
- the periodic resync (RECONCILE_REQUEUE_SECONDS) and error backoff → that Gslb.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable

from opentelemetry import trace
from opentelemetry.context import Context

from app.controller.metrics import ControllerMetrics
from app.controller.ports import PeerSource
from app.controller.queue import WorkQueue
from app.controller.reconcile import Outcome, Reconciler
from app.domain.gslb import GROUPS, TRACEPARENT_ANNOTATION, Gslb
from app.stores.base import EventType, GslbStore, ObjectKey, WatchEvent
from app.telemetry.carry import Cause, cause_from_annotations, cause_from_current, cause_of_write
from app.telemetry.spans import child_span

#: A NOTIFY reconciles the Gslbs of its host at most this often, each (seconds).
NOTIFY_INTERVAL = 1.0
#: A NOTIFY for a zone's apex reconciles every Gslb in the zone at most this often (seconds).
ZONE_NOTIFY_INTERVAL = 5.0

log = logging.getLogger("pygslb.controller")
tracer = trace.get_tracer("pygslb.controller")


class Controller:
    def __init__(
        self,
        *,
        store: GslbStore,
        reconciler: Reconciler,
        metrics: ControllerMetrics,
        requeue_seconds: float = 30.0,
        workers: int = 8,
        peers: PeerSource | None = None,
        peer_refresh_seconds: float = 5.0,
        groups: Iterable[str] = GROUPS,
    ) -> None:
        self.store = store
        self.reconciler = reconciler
        self.metrics = metrics
        self.queue: WorkQueue[ObjectKey, Cause] = WorkQueue()
        self.requeue_seconds = requeue_seconds
        self.workers = workers
        self.peers = peers
        self.peer_refresh_seconds = peer_refresh_seconds
        self.groups = tuple(groups)
        self._by_service: dict[tuple[str, str], set[ObjectKey]] = defaultdict(set)
        self._by_host: dict[str, set[ObjectKey]] = defaultdict(set)
        self._indexed: dict[ObjectKey, tuple[tuple[tuple[str, str], ...], tuple[str, ...]]] = {}
        self._last_write: dict[ObjectKey, Cause] = {}
        # The traceparent each Gslb had when last queued for a change: a delete recorded a context of its
        # own only if it differs (a REST DELETE stamps its caller first; a kubectl delete stamps nothing).
        self._queued_traceparent: dict[ObjectKey, str | None] = {}
        self._notified_at: dict[ObjectKey, float] = {}  # when a NOTIFY last queued each Gslb (or will)
        self._notify_timers: dict[ObjectKey, asyncio.TimerHandle] = {}
        self._zone_notified: dict[str, float] = {}
        self._zone_pending: dict[str, asyncio.TimerHandle] = {}
        self._peer_seen: dict[str, dict[str, tuple[str, ...]]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._inflight = 0
        self._active: set[ObjectKey] = set()  # being reconciled: may have read a state that just changed
        self._synced = asyncio.Event()
        self.reconciles = 0
        self.on_reconciled: Callable[[ObjectKey, Outcome | None], None] | None = None
        self.on_task: Callable[[asyncio.Task[None]], None] | None = None
        """Sees each task `start()` creates (the watch, the workers, the peer refresh): they run until
        `stop()`, so the runtime watches for one that ends."""

    # --- lifecycle --------------------------------------------------------------------------------

    @property
    def synced(self) -> bool:
        """True once every Gslb that existed at start has been reconciled once."""
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        await self._synced.wait()

    async def start(self) -> None:
        watch = self.store.watch()  # subscribe before listing so nothing falls between the two
        initial: list[Gslb] = []
        for group in self.groups:
            items, _ = await self.store.list(group)
            initial.extend(items)
        for gslb in initial:
            self._enqueue_object(gslb, "startup")
        self._initial = {ObjectKey.of(g) for g in initial}
        if not self._initial:
            self._synced.set()
        self._tasks.append(asyncio.create_task(self._watch(watch), name="gslb-watch"))
        for i in range(self.workers):
            self._tasks.append(asyncio.create_task(self._worker(), name=f"gslb-worker-{i}"))
        if self.peers is not None:
            self._tasks.append(asyncio.create_task(self._peer_refresh(), name="peer-refresh"))
        if self.on_task is not None:
            for task in self._tasks:
                self.on_task(task)

    async def stop(self, grace: float = 10.0) -> None:
        """Stop taking work, let in-flight reconciles finish within `grace`, then cancel."""
        self.queue.close()
        for timer in [*self._notify_timers.values(), *self._zone_pending.values()]:
            timer.cancel()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while self._inflight and loop.time() < deadline:
            await asyncio.sleep(0.02)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()

    # --- triggers ---------------------------------------------------------------------------------

    def _enqueue_object(self, gslb: Gslb, reason: str, event: WatchEvent | None = None) -> None:
        """Queue a Gslb with the cause of the write `event` reports (what it recorded, if anything). At
        start-up there is no event: the context recorded for the current generation is the cause,
        unless that generation was already reconciled (observed); it stays the last write that resyncs
        and health changes link to either way."""
        key = ObjectKey.of(gslb)
        meta = gslb.metadata
        annotations = meta.annotations or {}
        self._queued_traceparent[key] = annotations.get(TRACEPARENT_ANNOTATION)
        if event is None:
            cause = cause_from_annotations(annotations, meta.generation)
            observed = gslb.status.observed_generation if gslb.status else None
            if cause is not None:
                self._last_write[key] = cause
            self.queue.add(key, cause if observed != meta.generation else None, reason)
            return
        cause = cause_of_write(
            annotations,
            meta.generation,
            traceparent_written=event.trace_written,
            marker_written=event.marker_written,
        )
        if cause is not None:
            self._last_write[key] = cause
        self.queue.add(key, cause, reason)

    def service_changed(self, namespace: str, name: str) -> None:
        """Health of a service changed: reconcile the Gslbs it backs, as new root traces."""
        for key in sorted(self._by_service.get((namespace, name), set()) | self._active):
            self.queue.add(key, None, "health-change")

    def notified(self, zone: str, qname: str) -> None:
        """A peer sent NOTIFY for one of its `localtargets-<host>` (or the zone apex: everything).

        Anyone can send a NOTIFY (a peer's comes from wherever its controller's traffic leaves its
        cluster, so its source address proves nothing), so they only hasten work that resyncs would
        do anyway, and no faster than a peer needs: each Gslb at most once per `NOTIFY_INTERVAL`,
        each zone-wide pass at most once per `ZONE_NOTIFY_INTERVAL`; what comes sooner is deferred
        to the end of the interval, never dropped. A name no Gslb here serves is ignored.
        """
        self.metrics.notifies_received.inc()
        name = qname.lower().rstrip(".")
        host = name.removeprefix("localtargets-")
        if host in self._by_host:
            self._hasten(set(self._by_host[host]) | self._active, NOTIFY_INTERVAL)
        elif name == zone:
            loop = asyncio.get_running_loop()
            wait = self._zone_notified.get(zone, -ZONE_NOTIFY_INTERVAL) + ZONE_NOTIFY_INTERVAL - loop.time()
            if wait <= 0:
                self._zone_notified[zone] = loop.time()
                self.zone_changed(zone, "peer-notify")
            elif zone not in self._zone_pending:
                self._zone_pending[zone] = loop.call_later(wait, self._deferred_zone_notify, zone)
        else:
            log.debug("NOTIFY for %s: no Gslb here serves that host; ignored", name)

    def _deferred_zone_notify(self, zone: str) -> None:
        self._zone_pending.pop(zone, None)
        self._zone_notified[zone] = asyncio.get_running_loop().time()
        self.zone_changed(zone, "peer-notify")

    def _hasten(self, keys: set[ObjectKey], interval: float) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        for key in sorted(keys):
            if key in self._notify_timers:  # a deferred one is coming
                continue
            due = self._notified_at.get(key, -interval) + interval
            if due <= now:
                self._notified_at[key] = now
                self.queue.add(key, None, "peer-notify")
            else:  # its own timer: the queue's one per key is the resync's
                self._notify_timers[key] = loop.call_later(due - now, self._deferred_notify, key)

    def _deferred_notify(self, key: ObjectKey) -> None:
        self._notify_timers.pop(key, None)
        self._notified_at[key] = asyncio.get_running_loop().time()
        self.queue.add(key, None, "peer-notify")

    def zone_changed(self, zone: str, reason: str = "zone-change") -> None:
        """Something zone-wide changed (edge delegation): refresh the status of the Gslbs in it."""
        keys = {k for h, ks in self._by_host.items() if h == zone or h.endswith("." + zone) for k in ks}
        for key in sorted(keys | self._active):
            self.queue.add(key, None, reason)

    async def _watch(self, events: AsyncIterator[WatchEvent]) -> None:
        async for event in events:
            key = ObjectKey.of(event.object)
            if event.type == EventType.DELETED:
                # A delete that recorded its caller (for the last generation, since the last change) is
                # traced too; a context recorded before is an earlier write's.
                meta = event.object.metadata
                cause = cause_from_annotations(meta.annotations, meta.generation, "delete")
                if cause is not None and cause.traceparent == self._queued_traceparent.get(key):
                    cause = None
                self._last_write.pop(key, None)
                self._queued_traceparent.pop(key, None)
                self.queue.add(key, cause, "delete")
            elif event.spec_changed:
                self._enqueue_object(event.object, "write", event)

    # --- workers ----------------------------------------------------------------------------------

    async def _worker(self) -> None:
        while True:
            item = await self.queue.get()
            self._inflight += 1
            self._active.add(item.key)
            self.metrics.queue_depth.set(len(self.queue))
            key = item.key
            outcome: Outcome | None = None
            try:
                reason = item.reasons[-1] if item.reasons else ""
                outcome = await self.reconciler.reconcile(
                    key,
                    item.causes,
                    reason=reason,
                    link=self._last_write.get(key),
                    dropped_causes=item.dropped_causes,
                )
            except Exception as exc:  # any failure backs off; it never kills a worker
                delay = self.queue.backoff(key)
                # ERROR as controller-runtime's "Reconciler error": alerts on k8gb's error lines fire.
                log.error("reconcile %s failed (%s); retrying in %.1fs", key, exc, delay)
            else:
                self.queue.forget(key)
                self._index(key, outcome)
                gone = outcome.deleted or outcome.stopped
                if not gone and self.requeue_seconds > 0:
                    self.queue.add_after(key, self.requeue_seconds, "resync")
                elif gone:
                    self.queue.cancel(key)
                if outcome.retry_after is not None:
                    self.queue.add_after(key, outcome.retry_after, "retry")
            finally:
                self.reconciles += 1
                self._inflight -= 1
                self._active.discard(key)
                self.queue.done(key)
                self._initial.discard(key)
                if not self._initial:
                    self._synced.set()
                if self.on_reconciled is not None:
                    self.on_reconciled(key, outcome)

    def _index(self, key: ObjectKey, outcome: Outcome) -> None:
        """Keep service → keys and host → keys current; a reverse index keeps this O(own entries)."""
        services, hosts = self._indexed.pop(key, ((), ()))
        for service in services:
            self._discard(self._by_service, service, key)
        for host in hosts:
            self._discard(self._by_host, host, key)
        if outcome.deleted or outcome.stopped:
            self._notified_at.pop(key, None)
            self._forget_peers(hosts)
            return
        # Hosts as DNS compares them: a NOTIFY's name arrives lowercased, a host may be written in any case.
        outcome_hosts = tuple(dict.fromkeys(h.lower().rstrip(".") for h in outcome.hosts))
        self._indexed[key] = (outcome.services, outcome_hosts)
        for service in outcome.services:
            self._by_service[service].add(key)
        for host in outcome_hosts:
            self._by_host[host].add(key)
        for host, by_tag in outcome.peer_targets.items():
            self._peer_seen[host.lower().rstrip(".")] = by_tag
        self._forget_peers(hosts)

    def _forget_peers(self, hosts: Iterable[str]) -> None:
        """What peers answered for hosts no Gslb serves any more goes: every host ever served stayed."""
        for host in hosts:
            if host not in self._by_host:
                self._peer_seen.pop(host, None)
                if self.peers is not None:
                    self.peers.forget(host)

    @staticmethod
    def _discard[T](index: dict[T, set[ObjectKey]], entry: T, key: ObjectKey) -> None:
        keys = index.get(entry)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del index[entry]

    # --- peers ------------------------------------------------------------------------------------

    async def _peer_refresh(self) -> None:
        """Re-ask peers on a short interval; enqueue only the hosts whose answers changed."""
        while True:
            await asyncio.sleep(self.peer_refresh_seconds)
            await self._refresh_peers_once()

    async def _refresh_peers_once(self) -> None:
        """One round, one root trace (`refreshPeers`): its `peer.query` spans are its children, and the
        reconciles of hosts whose answers changed are too (without it each query was a one-span trace
        of its own, and such a reconcile said nothing of why it ran)."""
        assert self.peers is not None
        peers = self.peers
        hosts = [h for h, keys in self._by_host.items() if keys]
        if not hosts:
            return
        limit = asyncio.Semaphore(32)
        changed: list[str] = []

        async def ask(host: str, cause: Cause | None) -> None:
            async with limit:
                try:
                    answers = await peers.localtargets(host)
                except Exception as exc:  # never fatal
                    log.debug("peer refresh for %s failed: %s", host, exc)
                    return
            seen = {tag: tuple(sorted(a.targets)) for tag, a in answers.items() if a.targets}
            if host not in self._by_host:  # dropped while peers were asked
                return
            if seen != self._peer_seen.get(host, {}):
                self._peer_seen[host] = seen
                changed.append(host)
                for key in sorted(self._by_host.get(host, ())):
                    self.queue.add(key, cause, "peer-change")

        with child_span(tracer, "refreshPeers", {"k8gb.hosts.count": len(hosts)}, parent=Context()) as span:
            cause = cause_from_current("peer-change")
            await asyncio.gather(*(ask(h, cause if cause.traceparent else None) for h in hosts))
            if span.is_recording():
                span.set_attribute("pygslb.peers.changed", sorted(changed))

    async def wait_idle(self, timeout: float = 10.0) -> None:
        """Test and benchmark helper: wait until no work is queued or running."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not (self.queue.idle and self._inflight == 0):
            if loop.time() > deadline:
                raise TimeoutError("controller did not become idle")
            await asyncio.sleep(0.01)
