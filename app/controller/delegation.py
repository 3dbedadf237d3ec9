"""Keeps this cluster in the edge zone's delegation: NS + own glue A per load-balanced zone (k8gb §4.2, §4.6).

Runs on its own schedule (k8gb's ZONE_DELEGATION_RECONCILE_REQUEUE_SECONDS; 0: at start, then only
when kicked), independent of Gslbs.
The glue addresses come from a `GlueSource` asked every round: settings, or in kubernetes mode the
cluster's own DNS Service or ip-source Ingress, whose changes `kick` the loop. While they are unknown, and
while the provider fails, each zone is retried with exponential backoff; the last outcome per zone is kept
so each Gslb's status can say whether its zone is delegated, and why not.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Status, StatusCode

from app.controller.metrics import ControllerMetrics
from app.controller.ports import GlueSource
from app.domain.delegation import GlueUnknown, delegation_changes, withdrawal_changes
from app.domain.endpoint import Changes
from app.domain.zones import ZoneConfig
from app.providers.base import Provider, ProviderError
from app.telemetry.spans import child_span

log = logging.getLogger("pygslb.delegation")
tracer = trace.get_tracer("pygslb.controller")


@dataclass(frozen=True, slots=True)
class DelegationState:
    zone: str
    ok: bool
    message: str
    at: str
    attempts: int = 0
    reason: str = ""  # why not ok, for the Gslbs' EdgeDelegated condition ("" = the provider failed)


class StaticGlue:
    """Glue addresses fixed by settings (`Settings.glue_ips`); an empty list waits for ever, saying why."""

    def __init__(self, ips: Sequence[str], *, why_none: str = "set DNS_EXPOSED_IPS") -> None:
        self.ips = list(ips)
        self.why_none = why_none

    async def glue_ips(self) -> list[str]:
        if not self.ips:
            raise GlueUnknown(self.why_none, waiting=False)
        return list(self.ips)


class DelegationLoop:
    def __init__(
        self,
        *,
        provider: Provider,
        zones: list[ZoneConfig],
        own_tag: str,
        peer_tags: list[str],
        glue: GlueSource,
        glue_prefix: str,
        ns_ttl: int,
        metrics: ControllerMetrics,
        interval: float = 300.0,
        base_delay: float = 1.0,
        max_delay: float = 60.0,
    ) -> None:
        self.provider = provider
        self.zones = zones
        self.own_tag = own_tag
        self.peer_tags = peer_tags
        self.glue = glue
        self.glue_prefix = glue_prefix
        self.ns_ttl = ns_ttl
        self.metrics = metrics
        self.interval = interval
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.state: dict[str, DelegationState] = {}
        self.on_change: Callable[[str], None] | None = None
        self._kick = asyncio.Event()

    def kick(self) -> None:
        """Re-check now (this cluster's DNS address changed, a peer appeared, the operator asked)."""
        self._kick.set()

    async def run(self) -> None:
        failures = 0
        while True:
            self._kick.clear()  # a kick from now on, during the round too, is another round
            ok = True
            for zone in self.zones:
                ok &= await self.sync_zone(zone, failures + 1)
            failures = 0 if ok else failures + 1
            delay: float | None
            if ok:
                delay = self.interval or None  # k8gb's 0: no periodic check, only a kick
            else:
                # backing off never waits longer than the interval would have (the edge back, repaired soon)
                ceiling = min(self.max_delay, self.interval) if self.interval else self.max_delay
                delay = min(ceiling, self.base_delay * 2 ** (failures - 1)) * random.uniform(0.9, 1.1)
            try:
                await asyncio.wait_for(self._kick.wait(), timeout=delay)
            except TimeoutError:
                pass

    async def sync_zone(self, zone: ZoneConfig, attempt: int = 1) -> bool:
        name = getattr(self.provider, "name", type(self.provider).__name__)
        with child_span(tracer, "SaveZoneDelegation", parent=Context()) as span:
            span.set_attribute("dns.zone", zone.load_balanced_zone)
            span.set_attribute("dns.parent_zone", zone.parent_zone)
            span.set_attribute("pygslb.provider", name)
            try:
                glue_ips = await self.glue.glue_ips()
            except GlueUnknown as exc:
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                self._waiting(
                    DelegationState(zone.load_balanced_zone, False, str(exc), _now(), attempt, exc.reason)
                )
                return False
            except Exception as exc:  # reading the cluster's addresses failed in a way nobody foresaw
                self._failed(zone, name, exc, attempt, False, span, unexpected=True)
                return False
            span.set_attribute("dns.glue", ",".join(glue_ips))
            try:
                current = await self.provider.records(zone.parent_zone)
                changes = delegation_changes(
                    zone, self.own_tag, self.peer_tags, glue_ips, self.glue_prefix, self.ns_ttl, current
                )
                span.set_attribute("dns.changes", changes.count())
                if changes.has_changes:
                    await self.provider.apply(zone.parent_zone, changes)
                    await self._check_applied(zone, name, glue_ips)
                    log.info("edge delegation of %s updated through %s", zone.load_balanced_zone, name)
            except (ProviderError, ValueError, OSError) as exc:
                transient = bool(getattr(exc, "transient", isinstance(exc, OSError)))
                self._failed(zone, name, exc, attempt, transient, span)
                return False
            except Exception as exc:  # a bug or an answer nobody foresaw: a failed attempt, never the end
                self._failed(zone, name, exc, attempt, False, span, unexpected=True)
                return False
            before = self.state.get(zone.load_balanced_zone)
            if before is not None and not before.ok:
                log.info("edge delegation of %s through %s works again", zone.load_balanced_zone, name)
            self._set(
                DelegationState(zone.load_balanced_zone, True, f"delegated through {name}", _now(), attempt)
            )
            return True

    async def _check_applied(self, zone: ZoneConfig, name: str, glue_ips: list[str]) -> None:
        """Read the edge back after a write: an RFC 2136 server answers success to an add it ignores
        (RFC 2136 §3.4.2.2: say, a glue A where someone put a CNAME), which would otherwise be reported
        as delegated and rewritten every round for ever."""
        after = await self.provider.records(zone.parent_zone)
        left = delegation_changes(
            zone, self.own_tag, self.peer_tags, glue_ips, self.glue_prefix, self.ns_ttl, after
        )
        if left.has_changes:
            names = sorted({e.dns_name for e in (*left.create, *left.update_new, *left.delete)})
            raise ProviderError(
                f"the update was answered with success but the edge does not hold it for {', '.join(names)} "
                "(another record there, such as a CNAME, makes the server ignore it)"
            )

    def _waiting(self, state: DelegationState) -> None:
        """No glue to publish: the edge keeps what it has (k8gb waits too); said once per new reason."""
        before = self.state.get(state.zone)
        if before is None or before.message != state.message:
            log.warning("edge delegation of %s not published: %s", state.zone, state.message)
        self._set(state)

    def _failed(
        self,
        zone: ZoneConfig,
        name: str,
        exc: Exception,
        attempt: int,
        transient: bool,
        span: trace.Span,
        *,
        unexpected: bool = False,
    ) -> None:
        """Record a failed attempt in metrics, span, state (so status) and the log; the loop backs off.
        An unexpected error logs its traceback when it first shows, not on every retry."""
        self.metrics.provider_errors.labels(name, zone.load_balanced_zone, str(transient).lower()).inc()
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, str(exc)))
        text = f"{type(exc).__name__}: {exc}".rstrip(": ") if unexpected else str(exc)
        message = f"{name}: {text}"
        before = self.state.get(zone.load_balanced_zone)
        first = before is None or before.ok or before.message != message
        self._set(DelegationState(zone.load_balanced_zone, False, message, _now(), attempt))
        log.log(
            logging.ERROR if unexpected and first else logging.WARNING,
            "edge delegation of %s failed (attempt %d): %s",
            zone.load_balanced_zone,
            attempt,
            text,
            exc_info=exc if unexpected and first else None,
        )

    def _set(self, state: DelegationState) -> None:
        """Record the outcome; when it differs from the last one, let the Gslbs of the zone show it."""
        before = self.state.get(state.zone)
        self.state[state.zone] = state
        if (before is None or (before.ok, before.message) != (state.ok, state.message)) and self.on_change:
            self.on_change(state.zone)

    async def withdraw(self) -> None:
        """Leave every delegation (on an explicit decommission, not on a restart)."""
        for zone in self.zones:
            await withdraw_zone(self.provider, zone, self.own_tag, self.glue_prefix)


async def withdraw_zone(
    provider: Provider, zone: ZoneConfig, tag: str, glue_prefix: str, *, apply: bool = True
) -> Changes:
    """Take the cluster `tag` out of the zone's delegation: its glue A and its NS name go, the last
    cluster out removes the NS RRset (k8gb's ZoneDelegation finalizer). The other clusters never do
    this for a peer (they keep every name that has glue), so a cluster that is gone for good stays
    delegated to until this runs, for itself or, with its tag, from any other cluster's settings.
    `apply=False` only plans. Returns what the zone needed."""
    with child_span(tracer, "WithdrawZoneDelegation") as span:
        span.set_attribute("dns.zone", zone.load_balanced_zone)
        span.set_attribute("dns.parent_zone", zone.parent_zone)
        span.set_attribute("k8gb.geo_tag", tag)
        current = await provider.records(zone.parent_zone)
        changes = withdrawal_changes(zone, tag, glue_prefix, current)
        span.set_attribute("dns.changes", changes.count())
        if apply and changes.has_changes:
            await provider.apply(zone.parent_zone, changes)
            log.info("%s withdrawn from the edge delegation of %s", tag, zone.load_balanced_zone)
    return changes


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
