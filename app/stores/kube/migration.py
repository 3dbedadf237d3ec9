"""k8gb's legacy-gslb-migrator in kubernetes mode, step for step as `gslb_migration_controller.go`.

For a legacy (`k8gb.absa.oss`) Gslb, by its labels (app/domain/migration.py):

- `k8gb.io/migration-requested: "true"`: hold the finalizer `k8gb.io/legacy-migration-protection`;
  take the legacy Gslb's owner reference off its embedded Ingress (the twin references that Ingress,
  as any `resourceRef` Gslb does, and owns it no more than k8gb's does) and off the DNSEndpoint; create
  the `k8gb.io` twin unless one exists (an existing one is never overwritten); make the twin the
  DNSEndpoint's controller; label the legacy Gslb `k8gb.io/migrated-to-k8gb-io: "true"`. Event Normal
  `LegacyMigrated`, or Warning `LegacyIgnored` when the twin already existed.
- `k8gb.io/migrated-to-k8gb-io: "true"`: the finalizer and owner reference steps again (something may
  have put a legacy reference back), Warning `LegacyIgnored`.
- neither: the finalizer goes if held, Warning `LegacyDeprecated`.
- being deleted (holding the finalizer): the legacy references come off the Ingress and DNSEndpoint,
  then the finalizer: the garbage collector then finds nothing of the twin's to delete.

Every step reads what is there first and writes only what is missing, so a try that a crash or an
error cut short is finished by the next (the controller retries with its backoff).

Where this deviates from k8gb, and why: k8gb creates the twin first and then moves the references, so
the twin's first reconcile can find the DNSEndpoint controlled by the legacy Gslb and fail; here the
legacy references go first. k8gb's controller-runtime reconciles on every watch event and
so warns on each; here an event is recorded once per generation and labels of the object (the legacy
runtime's resyncs would otherwise repeat them every 30 s). A twin that exists and has exactly the
spec the conversion gives is taken for this migration's own (an attempt cut short after creating it),
so the event is `LegacyMigrated`, not `LegacyIgnored`. The deletion path touches only an object that
holds the finalizer: k8gb detaches the Ingress and DNSEndpoint of any legacy Gslb being deleted, which
for one deleted in the foreground (never migrated) would leave both behind, ownerless. Writes are
PUTs conditional on the version read, not k8gb's merge patches: the chart's RBAC grants `update`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator

from app.domain.gslb import GROUP, LEGACY_GROUP, Gslb
from app.domain.migration import (
    LEGACY_DEPRECATED,
    LEGACY_IGNORED,
    LEGACY_MIGRATED,
    MIGRATED_LABEL,
    MIGRATION_FINALIZER,
    MIGRATION_REQUESTED_LABEL,
    has_embedded_ingress,
    has_true_label,
    is_twin_spec,
    legacy_deprecated_message,
    legacy_ignored_message,
    legacy_migrated_message,
    twin_of,
)
from app.stores.base import AlreadyExists, NotFound, ObjectKey
from app.stores.kube.cached import ObjectCache
from app.stores.kube.client import DNS_ENDPOINT, INGRESS, LEGACY_GSLB, KubeApiError, KubeClient, Obj, Resource
from app.stores.kube.events import KubeEvents
from app.stores.kube.ownwrites import OwnWrites
from app.stores.kube.servers import gslb_object_ref, gslb_ref
from app.stores.kube.store import KubeGslbStore

log = logging.getLogger("pygslb.kube.migration")


class MigrationStepFailed(Exception):
    """Which step of the migration failed, and why: what the operator reads in the log."""


@contextlib.contextmanager
def _step(what: str) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        raise MigrationStepFailed(
            f"{what}: {type(exc).__name__}: {str(exc).rstrip(': ') or 'no reason given'}"
        ) from exc


WRITE_ATTEMPTS = 3
REPORTED_LIMIT = 4096


class KubeLegacyMigrator:
    """`LegacyMigrator` for kubernetes mode; runs where reconciles run (the leader)."""

    def __init__(
        self,
        store: KubeGslbStore,
        *,
        events: KubeEvents | None = None,
        own_writes: OwnWrites | None = None,
        ingresses: ObjectCache | None = None,
        dnsendpoints: ObjectCache | None = None,
    ) -> None:
        self.store = store
        self.client: KubeClient = store.client
        self.events = events
        self.own_writes = own_writes or OwnWrites()
        self.caches = {INGRESS.kind: ingresses, DNS_ENDPOINT.kind: dnsendpoints}
        self._reported: dict[tuple[str, str, str], tuple[object, ...]] = {}

    # --- the port ---------------------------------------------------------------------------------

    async def migrate(self, legacy: Gslb) -> None:
        labels = legacy.metadata.labels
        if has_true_label(labels, MIGRATED_LABEL):
            with _step("keeping a migrated legacy Gslb's objects with its twin"):
                legacy = await self._ensure_finalizer(legacy)
                await self._detach_ingress(legacy)
                await self._hand_over_dnsendpoint(legacy, await self._twin(legacy))
            await self._report(legacy, LEGACY_IGNORED, legacy_ignored_message(legacy, twin_existed=False))
            return
        if not has_true_label(labels, MIGRATION_REQUESTED_LABEL):
            with _step(f"removing the finalizer {MIGRATION_FINALIZER}"):
                legacy = await self._remove_finalizer(legacy)
            await self._report(legacy, LEGACY_DEPRECATED, legacy_deprecated_message(legacy))
            return
        with _step(f"adding the finalizer {MIGRATION_FINALIZER}"):
            legacy = await self._ensure_finalizer(legacy)
        # The legacy references go before the twin comes: its first reconcile finds the DNSEndpoint
        # ownerless and adopts it, where one still controlled by the legacy Gslb would fail it.
        with _step("taking the legacy Gslb's references off its Ingress and DNSEndpoint"):
            await self._detach_ingress(legacy)
            await self._hand_over_dnsendpoint(legacy, None)
        with _step("creating the k8gb.io twin"):
            twin = await self._twin(legacy)
            if twin is None:
                twin, ours = await self._create_twin(legacy)
            else:
                ours = is_twin_spec(twin, legacy, reference_ingress=True)
        with _step("handing the DNSEndpoint over to the twin"):
            await self._hand_over_dnsendpoint(legacy, twin)
        with _step(f"labelling the legacy Gslb {MIGRATED_LABEL}=true"):
            await self._label_migrated(legacy)
        log.info(
            "legacy Gslb %s/%s migrated to k8gb.io (twin %s)",
            legacy.namespace,
            legacy.name,
            "created" if ours else "already there",
        )
        if ours:
            await self._emit(legacy, "Normal", LEGACY_MIGRATED, legacy_migrated_message(legacy))
        else:
            await self._emit(
                legacy, "Warning", LEGACY_IGNORED, legacy_ignored_message(legacy, twin_existed=True)
            )

    async def release(self, legacy: Gslb) -> None:
        self._reported.pop(_key(legacy), None)
        if MIGRATION_FINALIZER not in (legacy.metadata.finalizers or ()):
            return
        with _step("releasing the deleted legacy Gslb's Ingress, DNSEndpoint and finalizer"):
            await self._detach_ingress(legacy)
            await self._hand_over_dnsendpoint(legacy, None)
            await self._remove_finalizer(legacy)

    # --- the legacy object ------------------------------------------------------------------------

    async def _ensure_finalizer(self, legacy: Gslb) -> Gslb:
        if MIGRATION_FINALIZER in (legacy.metadata.finalizers or ()):
            return legacy

        def added(meta: Obj) -> Obj | None:
            held = meta.get("finalizers") or []
            return None if MIGRATION_FINALIZER in held else {"finalizers": [*held, MIGRATION_FINALIZER]}

        return await self._update_legacy(legacy, added)

    async def _remove_finalizer(self, legacy: Gslb) -> Gslb:
        if MIGRATION_FINALIZER not in (legacy.metadata.finalizers or ()):
            return legacy

        def without(meta: Obj) -> Obj | None:
            held = meta.get("finalizers") or []
            if MIGRATION_FINALIZER not in held:
                return None
            return {"finalizers": [f for f in held if f != MIGRATION_FINALIZER] or None}

        return await self._update_legacy(legacy, without)

    async def _label_migrated(self, legacy: Gslb) -> None:
        def labelled(meta: Obj) -> Obj | None:
            labels = meta.get("labels") or {}
            return (
                None
                if labels.get(MIGRATED_LABEL) == "true"
                else {"labels": {**labels, MIGRATED_LABEL: "true"}}
            )

        await self._update_legacy(legacy, labelled)

    async def _update_legacy(self, legacy: Gslb, change: Callable[[Obj], Obj | None]) -> Gslb:
        """Update the legacy Gslb's metadata by `change` (the fields it returns, computed from the object
        as read) with a PUT conditional on the version read: a stale read (the informer behind our own
        last write) is read again from the API server. A PUT, not k8gb's merge patch: the chart's RBAC
        grants `update`, and the whole finalizer list is replaced either way."""
        cache = self.store.latest.get(LEGACY_GROUP)
        current = await cache.get(legacy.namespace, legacy.name) if cache is not None else None
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            if current is None:
                current = await self.client.get(LEGACY_GSLB, legacy.namespace, legacy.name)
            changed = change(current.get("metadata") or {})
            if changed is None:
                return Gslb.model_validate(current)
            body = {**current, "metadata": {**current["metadata"], **changed}}
            body["metadata"] = {k: v for k, v in body["metadata"].items() if v is not None}
            body.pop("status", None)
            try:
                updated = await self.client.replace(LEGACY_GSLB, legacy.namespace, legacy.name, body)
            except KubeApiError as exc:
                if exc.status != 409 or attempt == WRITE_ATTEMPTS:
                    raise
                current = None
                continue
            if cache is not None:
                cache.wrote(updated)
            return Gslb.model_validate(updated)
        raise AssertionError("unreachable: every attempt returns or raises")  # pragma: no cover

    # --- the twin ---------------------------------------------------------------------------------

    async def _twin(self, legacy: Gslb) -> Gslb | None:
        try:
            return await self.store.get_cached(ObjectKey(GROUP, legacy.namespace, legacy.name))
        except NotFound:
            return None

    async def _create_twin(self, legacy: Gslb) -> tuple[Gslb, bool]:
        """The twin, created now (True), or as somebody created it meanwhile (False)."""
        try:
            return await self.store.create(twin_of(legacy, reference_ingress=True)), True
        except AlreadyExists:
            existing = await self.store.get(ObjectKey(GROUP, legacy.namespace, legacy.name))
            return existing, is_twin_spec(existing, legacy, reference_ingress=True)

    # --- owner references -------------------------------------------------------------------------

    async def _detach_ingress(self, legacy: Gslb) -> None:
        """k8gb's `detachLegacyEmbeddedIngressOwner`: the Ingress outlives the legacy Gslb."""
        if not has_embedded_ingress(legacy):
            return

        def refs(obj: Obj) -> list[Obj] | None:
            current = obj["metadata"].get("ownerReferences") or []
            kept = [r for r in current if r.get("uid") != legacy.metadata.uid]
            return None if kept == current else kept

        await self._rewrite_refs(INGRESS, legacy, refs)

    async def _hand_over_dnsendpoint(self, legacy: Gslb, twin: Gslb | None) -> None:
        """k8gb's `detachLegacyDNSEndpointOwner`: the legacy reference goes; the twin becomes controller
        unless it is already an owner or some other controller remains."""

        def refs(obj: Obj) -> list[Obj] | None:
            current = obj["metadata"].get("ownerReferences") or []
            kept = [r for r in current if r.get("uid") != legacy.metadata.uid]
            add = (
                twin is not None
                and twin.metadata.uid
                and not any(r.get("uid") == twin.metadata.uid for r in kept)
                and not any(r.get("controller") for r in kept)
            )
            if add:
                assert twin is not None
                kept.append(gslb_ref(twin))
            return None if kept == current else kept

        await self._rewrite_refs(DNS_ENDPOINT, legacy, refs)

    async def _rewrite_refs(
        self, res: Resource, legacy: Gslb, refs: Callable[[Obj], list[Obj] | None]
    ) -> None:
        """Replace the ownerReferences of `res` of the legacy Gslb's name (a PUT, conditional on the
        version read: first from the informer, after a conflict from the API server); absent: nothing
        to do."""
        ns, name = legacy.namespace, legacy.name
        cache = self.caches.get(res.kind)
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            if cache is not None and attempt == 1:
                obj = await cache.get(ns, name)
            else:
                obj = await self.client.get_or_none(res, ns, name)
            if obj is None:
                return
            wanted = refs(obj)
            if wanted is None:
                return
            body = {**obj, "metadata": {**obj["metadata"], "ownerReferences": wanted}}
            if not wanted:
                del body["metadata"]["ownerReferences"]
            try:
                with self.own_writes.writing(res.kind, ns, name):
                    written = await self.client.replace(res, ns, name, body)
                    self.own_writes.record(written)
            except KubeApiError as exc:
                if exc.status == 404:
                    return
                if exc.status != 409 or attempt == WRITE_ATTEMPTS:
                    raise
                continue
            if cache is not None:
                cache.wrote(written)
            log.info(
                "%s %s/%s: owner references %s", res.kind, ns, name, [r.get("apiVersion") for r in wanted]
            )
            return

    # --- events -----------------------------------------------------------------------------------

    async def _report(self, legacy: Gslb, reason: str, message: str) -> None:
        """A Warning once per generation and migration labels of the object (see the module's notes)."""
        key = _key(legacy)
        version = (legacy.metadata.uid, legacy.metadata.generation, reason)
        if self._reported.get(key) == version:
            return
        if len(self._reported) >= REPORTED_LIMIT:
            self._reported.clear()
        self._reported[key] = version
        await self._emit(legacy, "Warning", reason, message)

    async def _emit(self, legacy: Gslb, type_: str, reason: str, message: str) -> None:
        if self.events is not None:
            await self.events.emit(gslb_object_ref(legacy), type_, reason, message)


def _key(gslb: Gslb) -> tuple[str, str, str]:
    return gslb.group, gslb.namespace, gslb.name
