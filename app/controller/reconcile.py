"""The reconcile pipeline for one Gslb, top to bottom as k8gb's (k8gb.md §4.3), one span per step.

hosts and services → local health → exposed IPs → peers → strategy → records → publish → status.
Every collaborator is a port (controller/ports.py), so embedded and kubernetes modes share this code.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from app.controller.delegation import DelegationState
from app.controller.gslb_series import GslbSample
from app.controller.metrics import ControllerMetrics
from app.controller.ports import (
    ExposedIpSource,
    HealthSource,
    LegacyMigrator,
    Notifier,
    PeerSource,
    RecordSink,
    ServerSource,
)
from app.domain.endpoint import Endpoint
from app.domain.gslb import (
    GROUP,
    LEGACY_GROUP,
    ORPHAN_FINALIZER,
    Condition,
    Gslb,
    GslbStatus,
    HealthStatus,
    LoadBalancer,
    PeerAnswer,
    Server,
    StrategyType,
    with_defaults,
)
from app.domain.health import host_health
from app.domain.migration import is_migration_paused
from app.domain.records import HostFacts, desired_endpoints, healthy_records
from app.domain.zones import ZoneConfig, zone_for
from app.stores.base import GslbStore, NotFound, ObjectKey
from app.telemetry.carry import Cause, annotations_from_context, start_reconcile_span
from app.telemetry.spans import child_span

log = logging.getLogger("pygslb.reconcile")
TWIN_WAIT_SECONDS = 0.5
tracer = trace.get_tracer("pygslb.controller")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the runner needs to schedule the next round."""

    deleted: bool = False
    # A legacy Gslb labelled for migration: not reconciled, not resynced, in no index (k8gb's Stop()).
    stopped: bool = False
    # Look again after this many seconds (a stopped legacy Gslb whose twin has not published yet).
    retry_after: float | None = None
    error: str | None = None
    localtargets_changed: tuple[str, ...] = ()
    services: tuple[tuple[str, str], ...] = ()
    hosts: tuple[str, ...] = ()
    peer_targets: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)


class MigrationFailed(Exception):
    """A step of the legacy migration failed: retried with the backoff, and no reconcile error (the
    legacy Gslb's status, events and error count are the legacy runtime's, which stays off it)."""


@dataclass(slots=True)
class Reconciler:
    store: GslbStore
    servers: ServerSource
    health: HealthSource
    exposed: ExposedIpSource
    sink: RecordSink
    geo_tag: str
    zones: list[ZoneConfig]
    metrics: ControllerMetrics
    peers: PeerSource | None = None
    notifier: Notifier | None = None
    edge_state: Mapping[str, DelegationState] | None = None
    migrator: LegacyMigrator | None = None
    _localtargets: dict[ObjectKey, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    # The uid each Gslb had when last read: which one a reconcile that finds it gone withdraws.
    _uids: dict[ObjectKey, str] = field(default_factory=dict)
    # The group whose Gslb last observed the (namespace, name) metric series: k8gb's series carry no
    # group, so a legacy Gslb and its k8gb.io twin share them, and one leaving must not drop the other's.
    _series_group: dict[tuple[str, str], str] = field(default_factory=dict)

    async def reconcile(
        self,
        key: ObjectKey,
        causes: Sequence[Cause] = (),
        reason: str = "",
        link: Cause | None = None,
        dropped_causes: int = 0,
    ) -> Outcome:
        """Causes (write contexts) make the span a child of the newest writer; without any the span is a
        new root linked to `link`, the last write's context. `dropped_causes`: older ones the queue let
        go (counted in `pygslb.reconcile.causes`)."""
        attributes = {
            "k8gb.gslb.namespace": key.namespace,
            "k8gb.gslb.name": key.name,
            "k8gb.gslb.group": key.group,
            "pygslb.reconcile.reason": reason or "write",
        }
        with start_reconcile_span(
            tracer,
            "Reconcile",
            list(causes),
            reason or "resync",
            last_write=link,
            attributes=attributes,
            dropped_causes=dropped_causes,
        ) as span:
            started = time.perf_counter()
            try:
                outcome = await self._reconcile(key, span)
            except MigrationFailed as exc:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                raise
            except Exception as exc:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                self.metrics.reconcile_failed(key.namespace, key.name)
                self.metrics.reconcile_seconds.labels("error").observe(time.perf_counter() - started)
                await self._record_error(key, exc)
                raise
            self.metrics.reconcile_seconds.labels("ok").observe(time.perf_counter() - started)
            return outcome

    async def _reconcile(self, key: ObjectKey, span: trace.Span) -> Outcome:
        try:
            gslb = await self.store.get(key)
        except NotFound:
            span.set_attribute("pygslb.deleted", True)
            return await self._withdraw(key, self._uids.pop(key, None))
        if gslb.metadata.deletion_timestamp:
            self._uids.pop(key, None)
            if gslb.group == LEGACY_GROUP:
                await self._migration_step(self.migrator.release if self.migrator else None, gslb)
            orphaning = ORPHAN_FINALIZER in (gslb.metadata.finalizers or ())
            return await self._withdraw(key, None if orphaning else gslb.metadata.uid)
        if gslb.group == LEGACY_GROUP:
            await self._migration_step(self.migrator.migrate if self.migrator else None, gslb)
            if is_migration_paused(gslb):
                span.set_attribute("pygslb.legacy.migration_paused", True)
                return await self._stop(key)
        if gslb.metadata.uid:
            self._uids[key] = gslb.metadata.uid
        span.set_attribute("k8gb.gslb.generation", gslb.metadata.generation or 0)
        span.set_attribute("k8gb.gslb.strategy", gslb.spec.strategy.type)

        if not gslb.spec.strategy.dns_ttl_seconds:
            # k8gb writes the defaulted TTL back into the object. That is a new generation caused by this
            # reconcile: stamp its context so the follow-up stays in the same trace.
            defaulted = with_defaults(gslb)
            generation = (gslb.metadata.generation or 0) + 1
            annotations = {
                **(gslb.metadata.annotations or {}),
                **annotations_from_context(generation=generation),
            }
            defaulted.metadata = defaulted.metadata.model_copy(update={"annotations": annotations})
            gslb = await self.store.update(defaulted)

        # --- hosts and the services behind them -------------------------------------------------
        with child_span(tracer, "resolveServers") as step:
            all_servers = await self.servers.servers(gslb)
            servers = [s for s in all_servers if zone_for(s.host, self.zones) is not None]
            dropped = sorted({s.host for s in all_servers} - {s.host for s in servers})
            step.set_attribute("k8gb.hosts", [s.host for s in servers])
            if dropped:
                step.set_attribute("k8gb.hosts.outside_zones", dropped)
                log.warning(
                    "%s: hosts outside every load-balanced zone are ignored: %s", key, ", ".join(dropped)
                )
        span.set_attribute("k8gb.hosts", [s.host for s in servers])

        # --- local health -------------------------------------------------------------------------
        with child_span(tracer, "serviceHealth") as step:
            health = {
                s.host: host_health(
                    (self.health.state(svc.namespace, svc.name) for svc in s.services),
                    gslb.spec.service_health_policy,
                )
                for s in servers
            }
            if step.is_recording():
                step.set_attributes({f"k8gb.health.{host}": v.value for host, v in health.items()})

        # --- exposed IPs --------------------------------------------------------------------------
        with child_span(tracer, "exposedIPs") as step:
            exposed = await self.exposed.exposed_ips(gslb)
            step.set_attribute("k8gb.exposed_ips", exposed)

        # --- peers --------------------------------------------------------------------------------
        peer_targets, peer_status = await self._query_peers([s.host for s in servers])

        # --- strategy → records -------------------------------------------------------------------
        with child_span(tracer, "gslbDNSEndpoint") as step:
            facts = [HostFacts(s.host, health[s.host], peer_targets.get(s.host, {})) for s in servers]
            desired = desired_endpoints(gslb, self.geo_tag, exposed, facts)
            if step.is_recording():
                step.set_attribute(
                    "k8gb.records.planned", [f"{e.dns_name} A {','.join(e.targets)}" for e in desired]
                )

        with child_span(tracer, "SaveDNSEndpoint") as step:
            published = await self.sink.publish(gslb, desired)
            step.set_attribute("k8gb.records.published", len(published))

        changed = self._localtargets_changed(key, published)
        if changed and self.notifier is not None:
            await self.notifier.notify(changed)

        # --- status -------------------------------------------------------------------------------
        records = healthy_records(published)
        status = GslbStatus(
            service_health=health,
            healthy_records=records,
            geo_tag=self.geo_tag,
            hosts=", ".join(s.host for s in servers),
            load_balancer=LoadBalancer(exposed_ips=exposed),
            servers=servers,
            observed_generation=gslb.metadata.generation,
            peers=peer_status or None,
            conditions=[_ready(gslb, health, records), *self._edge_conditions(servers)],
        )
        await self._write_status(gslb, status)
        sample = GslbSample.of(
            gslb.spec.strategy.type,
            gslb.spec.strategy.primary_geo_tag == self.geo_tag,
            health,
            records,
            exposed,
            self.geo_tag,
            published=[(e.dns_name, len(e.targets)) for e in published],
        )
        self.metrics.observe(key.namespace, key.name, sample)
        self._series_group[(key.namespace, key.name)] = key.group
        return Outcome(
            localtargets_changed=tuple(changed),
            services=tuple((svc.namespace, svc.name) for s in servers for svc in s.services),
            hosts=tuple(s.host for s in servers),
            peer_targets={
                h: {t: tuple(sorted(ips)) for t, ips in by.items()} for h, by in peer_targets.items()
            },
        )

    async def _query_peers(
        self, hosts: list[str]
    ) -> tuple[dict[str, dict[str, list[str]]], list[PeerAnswer]]:
        if self.peers is None or not hosts:
            return {}, []
        peers = self.peers
        with child_span(tracer, "peerTargets") as step:
            answers = await asyncio.gather(*(peers.localtargets(h) for h in hosts))
            targets: dict[str, dict[str, list[str]]] = {}
            status: list[PeerAnswer] = []
            for host, by_tag in zip(hosts, answers, strict=True):
                targets[host] = {tag: list(a.targets) for tag, a in by_tag.items() if a.targets}
                for tag, answer in sorted(by_tag.items()):
                    status.append(
                        PeerAnswer(geo_tag=tag, host=host, targets=list(answer.targets), error=answer.error)
                    )
                    step.set_attribute(
                        f"k8gb.peer.{tag}.{host}", answer.error or ",".join(answer.targets) or "(none)"
                    )
                    self.metrics.peer_queries.labels(tag, "error" if answer.error else "ok").inc()
            return targets, status

    def _edge_conditions(self, servers: Sequence[Server]) -> list[Condition]:
        """Whether the zones of this Gslb's hosts are delegated from the edge, and the last error if not."""
        if self.edge_state is None:
            return []
        zones = sorted({z.load_balanced_zone for s in servers if (z := zone_for(s.host, self.zones))})
        states = [self.edge_state[z] for z in zones if z in self.edge_state]
        if not states:
            return []
        failed = [st for st in states if not st.ok]
        return [
            Condition(
                type="EdgeDelegated",
                status="False" if failed else "True",
                reason=(failed[0].reason or "ProviderError") if failed else "Delegated",
                message="; ".join(st.message for st in (failed or states)),
                last_transition_time=max(st.at for st in states),
            )
        ]

    def _localtargets_changed(self, key: ObjectKey, published: Sequence[Endpoint]) -> list[str]:
        now = {
            e.dns_name: tuple(sorted(e.targets)) for e in published if e.dns_name.startswith("localtargets-")
        }
        before = self._localtargets.get(key, {})
        self._localtargets[key] = now
        return sorted(name for name in set(now) | set(before) if now.get(name) != before.get(name))

    async def _migration_step(self, step: Callable[[Gslb], Awaitable[None]] | None, gslb: Gslb) -> None:
        if step is None:
            return
        with child_span(tracer, "legacyMigration"):
            try:
                await step(gslb)
            except Exception as exc:
                raise MigrationFailed(f"legacy migration: {str(exc) or type(exc).__name__}") from exc

    async def _stop(self, key: ObjectKey) -> Outcome:
        """Leave a legacy Gslb labelled for migration alone, as k8gb's legacy runtime does: no status,
        no event, no metric series. Its records are withdrawn without its uid: kubernetes mode deletes
        nothing then (the DNSEndpoint is, or is about to be, the twin's), embedded mode takes its part
        out of the zone (the twin serves the same records; a restart would not rebuild them either),
        once the twin has been reconciled, so that DNS has no gap in between."""
        self._uids.pop(key, None)
        try:
            twin = await self.store.get(ObjectKey(GROUP, key.namespace, key.name))
        except NotFound:
            twin = None
        if twin is not None and twin.status is None:  # not reconciled yet: keep serving meanwhile
            return Outcome(stopped=True, retry_after=TWIN_WAIT_SECONDS)
        outcome = await self._withdraw(key, None)
        return Outcome(stopped=True, localtargets_changed=outcome.localtargets_changed)

    async def _withdraw(self, key: ObjectKey, uid: str | None) -> Outcome:
        await self.sink.withdraw(key.namespace, key.name, key.group, uid)
        gone = sorted(self._localtargets.pop(key, {}))
        if gone and self.notifier is not None:
            await self.notifier.notify(gone)
        series = (key.namespace, key.name)
        if self._series_group.get(series, key.group) == key.group:
            self._series_group.pop(series, None)
            self.metrics.forget(key.namespace, key.name)
        return Outcome(deleted=True, localtargets_changed=tuple(gone))

    async def _write_status(self, gslb: Gslb, status: GslbStatus) -> None:
        """Write only when something other than condition timestamps changed (no write loops). A
        condition's lastTransitionTime moves only when its status does, as Kubernetes conditions go: a
        new reason or message alone keeps it."""
        old = gslb.status
        if old is not None and old.conditions and status.conditions:
            kept = []
            for cond in status.conditions:
                prev = next((c for c in old.conditions if c.type == cond.type), None)
                if prev is not None and prev.status == cond.status:
                    cond = cond.model_copy(update={"last_transition_time": prev.last_transition_time})
                kept.append(cond)
            status.conditions = kept
        if old is not None and old.model_dump() == status.model_dump():
            return
        await self.store.write_status(ObjectKey.of(gslb), status)

    async def _record_error(self, key: ObjectKey, exc: Exception) -> None:
        """Show the failure in status (Ready=False) without losing what was last published."""
        try:
            gslb = await self.store.get(key)
        except Exception:  # the store itself may be the failing part
            return
        status = (gslb.status or GslbStatus(geo_tag=self.geo_tag)).model_copy(deep=True)
        cond = Condition(
            type="Ready",
            status="False",
            reason="ReconcileError",
            message=f"{type(exc).__name__}: {exc}"[:1024],
            last_transition_time=_now(),
            observed_generation=gslb.metadata.generation,
        )
        status.conditions = [c for c in status.conditions or [] if c.type != "Ready"] + [cond]
        try:
            await self._write_status(gslb, status)
        except Exception:
            log.exception("%s: could not record the reconcile error in status", key)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _ready(gslb: Gslb, health: dict[str, HealthStatus], records: dict[str, list[str]]) -> Condition:
    if not health:
        reason, message, ok = "NoHosts", "no host of this Gslb is inside a load-balanced zone", False
    elif not records:
        reason, message, ok = "NoTargets", "no healthy target anywhere: hosts answer NXDOMAIN", True
    else:
        reason, message, ok = "Reconciled", f"{len(records)} of {len(health)} hosts have targets", True
    if gslb.spec.strategy.type == StrategyType.FAILOVER and not gslb.spec.strategy.primary_geo_tag:
        message += "; failover without primaryGeoTag treats every cluster as secondary"
    return Condition(
        type="Ready",
        status="True" if ok else "False",
        reason=reason,
        message=message,
        last_transition_time=_now(),
        observed_generation=gslb.metadata.generation,
    )
