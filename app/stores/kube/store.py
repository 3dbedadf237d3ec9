"""`GslbStore` over Gslb custom resources of both API groups (k8gb.io and the legacy k8gb.absa.oss).

Reads and writes go straight to the API server (read-your-writes for the REST API); the change feed
comes from one informer per group, started by `start()`. `watch()` subscribes at call time, so a caller
that subscribes and then lists misses nothing: every change after the subscription arrives as an event,
everything before it is in the list. Updates follow k8gb's update predicate: one counts only if
`metadata.generation` or a k8gb annotation (`k8gb.io/…`, `k8gb.absa.oss/…`) changed, so status writes
(ours included) never loop back into a reconcile. The feed leaves the others out (the reconciler, its
only reader, ignores them): a cold start's status writes would otherwise each be parsed for nothing.

Kubernetes errors map onto the store's: 404 NotFound, 409 AlreadyExists/Conflict, 422 Invalid,
unreachable or 5xx Unavailable; each keeps the server's own message, which the REST API shows as is.
Status goes through the status subresource as a whole (PUT), so hosts that disappeared from
`serviceHealth` disappear from the object too.
"""

from __future__ import annotations

import asyncio
import builtins
import functools
import logging
from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from app.domain.gslb import (
    GROUPS,
    TRACE_GENERATION_ANNOTATION,
    TRACEPARENT_ANNOTATION,
    Gslb,
    GslbStatus,
    reconciled_annotations,
)
from app.domain.migration import migration_labels
from app.stores.base import (
    AlreadyExists,
    Conflict,
    EventType,
    NotFound,
    ObjectKey,
    StoreError,
    Unavailable,
    WatchEvent,
)
from app.stores.feed import Fanout, Feed
from app.stores.kube.cached import ObjectCache
from app.stores.kube.client import KubeApiError, KubeClient, Obj, gslb_resource
from app.stores.kube.events import INVALID_SPEC, KubeEvents, ObjectRef
from app.stores.kube.watch import EventType as FeedType
from app.stores.kube.watch import Informer, ResourceEvent

log = logging.getLogger("pygslb.kube.store")

STATUS_RETRIES = 3


class Invalid(StoreError):
    """The API server rejected the object (422)."""

    reason = "Invalid"
    code = 422


class Forbidden(StoreError):
    reason = "Forbidden"
    code = 403


def store_error(exc: KubeApiError, what: object) -> StoreError:
    """The store error for an API error: `what` for the log, the server's message for the REST API."""
    kind = _error_kind(exc)
    return kind(f"{what}: {exc.message}", server_message=exc.message if exc.status else None)


def _error_kind(exc: KubeApiError) -> type[StoreError]:
    if exc.status == 404:
        return NotFound
    if exc.status == 409:
        return AlreadyExists if exc.reason == "AlreadyExists" else Conflict
    if exc.status in (400, 422):
        return Invalid
    if exc.status in (401, 403):
        return Forbidden
    if exc.unreachable:
        return Unavailable
    return StoreError


def tracked_annotations(obj: Obj | None) -> dict[str, str]:
    return reconciled_annotations(((obj or {}).get("metadata") or {}).get("annotations"))


def _annotation(obj: Obj | None, name: str) -> str | None:
    value = (((obj or {}).get("metadata") or {}).get("annotations") or {}).get(name)
    return value if isinstance(value, str) else None


def spec_changed(new: Obj, old: Obj | None) -> bool:
    """k8gb's update predicate: generation or a k8gb annotation changed (deletion bumps generation);
    also a migration label, which k8gb's legacy runtime and migrator see (they watch every update)."""
    if old is None:
        return True
    new_meta, old_meta = new.get("metadata") or {}, old.get("metadata") or {}
    return (
        new_meta.get("generation") != old_meta.get("generation")
        or tracked_annotations(new) != tracked_annotations(old)
        or migration_labels(new_meta.get("labels")) != migration_labels(old_meta.get("labels"))
        or bool(new_meta.get("deletionTimestamp")) != bool(old_meta.get("deletionTimestamp"))
    )


def to_wire(gslb: Gslb) -> Obj:
    """The object as written to the API: no status (a subresource) and no server-managed fields."""
    body = gslb.wire()
    body.pop("status", None)
    meta = body.setdefault("metadata", {})
    for server_field in ("uid", "generation", "creationTimestamp", "deletionTimestamp"):
        meta.pop(server_field, None)
    meta.setdefault("namespace", gslb.namespace)
    return body


class KubeGslbStore:
    """Gslb CRs through a `KubeClient`. `namespace` limits the change feed (None: all namespaces)."""

    def __init__(
        self,
        client: KubeClient,
        *,
        namespace: str | None = None,
        groups: Iterable[str] = GROUPS,
        events: KubeEvents | None = None,
        owns_client: bool = False,
    ) -> None:
        self.client = client
        self.owns_client = owns_client  # close the client with the store (the process built it for us)
        self.events = events
        self.informers: dict[str, Informer] = {
            group: Informer(client, gslb_resource(group), namespace=namespace) for group in groups
        }
        for group, informer in self.informers.items():
            informer.add_handler(functools.partial(self._on_event, group))
        self.latest = {group: ObjectCache(informer) for group, informer in self.informers.items()}
        self._feed: Fanout[WatchEvent] = Fanout()
        self._invalid: dict[tuple[str, str, str], str] = {}

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the feeds of both groups and wait for their first list."""
        await asyncio.gather(*(informer.start() for informer in self.informers.values()))

    async def close(self) -> None:
        await asyncio.gather(*(informer.stop() for informer in self.informers.values()))
        self._feed.close()
        if self.owns_client:
            await self.client.close()

    # --- reads ----------------------------------------------------------------------------------

    def _parse(self, obj: Obj) -> Gslb:
        try:
            return Gslb.model_validate(obj)
        except ValidationError as exc:
            raise Invalid(f"{_describe(obj)}: {exc}") from exc

    async def get(self, key: ObjectKey) -> Gslb:
        try:
            obj = await self.client.get(gslb_resource(key.group), key.namespace, key.name)
        except KubeApiError as exc:
            raise store_error(exc, key) from exc
        return self._parse(obj)

    async def list(self, group: str, namespace: str | None = None) -> tuple[list[Gslb], str]:
        try:
            listing = await self.client.list(gslb_resource(group), namespace)
        except KubeApiError as exc:
            if exc.status == 404:  # the group's CRD is not installed: nothing of it exists
                return [], ""
            raise store_error(exc, f"gslbs.{group}") from exc
        items: builtins.list[Gslb] = []
        for obj in listing.get("items") or []:
            obj.setdefault("apiVersion", gslb_resource(group).api_version)
            try:
                items.append(Gslb.model_validate(obj))
            except ValidationError as exc:
                log.warning("skipping %s: %s", _describe(obj), exc)
        return items, str((listing.get("metadata") or {}).get("resourceVersion") or "")

    def list_cached(self, group: str) -> builtins.list[Gslb] | None:
        """Every valid Gslb of `group` the informer holds, or None before its first list."""
        informer = self.informers.get(group)
        if informer is None or not informer.synced.is_set():
            return None
        items: builtins.list[Gslb] = []
        for obj in informer.items():
            try:
                items.append(Gslb.model_validate(obj))
            except ValidationError as exc:  # once per version, whether its event or a list saw it first
                self._report_invalid(group, obj, exc)
        return items

    async def get_cached(self, key: ObjectKey) -> Gslb:
        """`get` from the informer (see cached.py): what a reconcile reads, no request once synced."""
        cache = self.latest.get(key.group)
        if cache is None:
            return await self.get(key)
        try:
            obj = await cache.get(key.namespace, key.name)
        except KubeApiError as exc:
            raise store_error(exc, key) from exc
        if obj is None:
            raise NotFound(f"{key}: not found")
        return self._parse(obj)

    # --- writes ---------------------------------------------------------------------------------

    async def create(self, gslb: Gslb, *, dry_run: bool = False) -> Gslb:
        res = gslb_resource(gslb.group)
        body = to_wire(gslb)
        body["metadata"].pop("resourceVersion", None)
        try:
            created = await self.client.create(res, gslb.namespace, body, dry_run=dry_run)
        except KubeApiError as exc:
            raise store_error(exc, ObjectKey.of(gslb)) from exc
        return self._parse(created)

    async def update(self, gslb: Gslb, *, dry_run: bool = False) -> Gslb:
        """PUT with the object's resourceVersion (409 when stale); without one, the current version."""
        key = ObjectKey.of(gslb)
        res = gslb_resource(gslb.group)
        body = to_wire(gslb)
        try:
            if not body["metadata"].get("resourceVersion"):
                current = await self.client.get(res, key.namespace, key.name)
                body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            updated = await self.client.replace(res, key.namespace, key.name, body, dry_run=dry_run)
        except KubeApiError as exc:
            raise store_error(exc, key) from exc
        if not dry_run:
            self._wrote(key, updated)
        return self._parse(updated)

    async def update_status(
        self,
        key: ObjectKey,
        status: GslbStatus,
        resource_version: str | None = None,
        *,
        dry_run: bool = False,
    ) -> Gslb:
        """Replace the whole status through the status subresource.

        With `resource_version` the write is conditional (409 when stale); without, it is retried on
        a concurrent change, since the status is this controller's to overwrite.
        """
        res = gslb_resource(key.group)
        wire_status = status.model_dump(mode="json", by_alias=True, exclude_none=True)
        for attempt in range(STATUS_RETRIES):
            try:
                current = await self.client.get(res, key.namespace, key.name)
                if resource_version:
                    current["metadata"]["resourceVersion"] = resource_version
                current["status"] = wire_status
                updated = await self.client.replace(
                    res, key.namespace, key.name, current, subresource="status", dry_run=dry_run
                )
                if not dry_run:
                    self._wrote(key, updated)
                return self._parse(updated)
            except KubeApiError as exc:
                if exc.status == 409 and not resource_version and attempt + 1 < STATUS_RETRIES:
                    continue
                raise store_error(exc, key) from exc
        raise Conflict(f"{key}: status kept changing")  # pragma: no cover - loop always returns or raises

    def _wrote(self, key: ObjectKey, obj: Obj) -> None:
        if (cache := self.latest.get(key.group)) is not None:
            cache.wrote(obj)

    async def write_status(self, key: ObjectKey, status: GslbStatus) -> None:
        await self.update_status(key, status)

    async def write_status_cached(self, key: ObjectKey, status: GslbStatus) -> None:
        """`write_status` built on the cached object: one PUT, conditional on the cached version; when
        that version is stale (409) the usual read-modify-write takes over. The reply goes to the
        cache as it came: nobody needs it parsed (that was 3% of a cold start's CPU)."""
        cache = self.latest.get(key.group)
        base = await cache.get(key.namespace, key.name) if cache is not None else None
        if cache is None or base is None:
            await self.update_status(key, status)
            return
        body = {**base, "status": status.model_dump(mode="json", by_alias=True, exclude_none=True)}
        try:
            updated = await self.client.replace(
                gslb_resource(key.group), key.namespace, key.name, body, subresource="status"
            )
        except KubeApiError as exc:
            if exc.status == 409:
                await self.update_status(key, status)
                return
            raise store_error(exc, key) from exc
        cache.wrote(updated)

    async def delete(
        self,
        key: ObjectKey,
        resource_version: str | None = None,
        *,
        dry_run: bool = False,
        propagation: str | None = None,
    ) -> Gslb:
        """DELETE with DeleteOptions; `propagation` None is Background (the owned Ingress and
        DNSEndpoint go with the Gslb, as kubectl deletes)."""
        res = gslb_resource(key.group)
        try:
            current = await self.client.get(res, key.namespace, key.name)
            answer = await self.client.delete(
                res,
                key.namespace,
                key.name,
                resource_version=resource_version,
                propagation=propagation or "Background",
                dry_run=dry_run,
            )
        except KubeApiError as exc:
            raise store_error(exc, key) from exc
        return self._parse(answer if answer.get("kind") == "Gslb" else current)

    # --- change feed ----------------------------------------------------------------------------

    def watch(self) -> Feed[WatchEvent]:
        """Every change after this call, both groups; ends when the store closes."""
        return self._feed.subscribe()

    def _on_event(self, group: str, event: ResourceEvent) -> None:
        kind = {
            FeedType.ADDED: EventType.ADDED,
            FeedType.MODIFIED: EventType.MODIFIED,
            FeedType.DELETED: EventType.DELETED,
        }.get(event.type)
        if kind is None or not self._feed.subscribed:  # the informer's first list, before any reader
            return
        if kind == EventType.MODIFIED and not spec_changed(event.object, event.old):
            return
        try:
            gslb = Gslb.model_validate(event.object)
        except ValidationError as exc:
            self._report_invalid(group, event.object, exc)
            return

        def written(name: str) -> bool:
            return _annotation(event.object, name) != _annotation(event.old, name)

        self._feed.publish(
            WatchEvent(
                kind,
                gslb,
                trace_written=written(TRACEPARENT_ANNOTATION),
                marker_written=written(TRACE_GENERATION_ANNOTATION),
            )
        )

    def _report_invalid(self, group: str, obj: Obj, exc: ValidationError) -> None:
        """A CR our models reject cannot be reconciled: say so once per version, in the log and an Event."""
        meta = obj.get("metadata") or {}
        key = (group, str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        version = str(meta.get("resourceVersion") or "")
        if self._invalid.get(key) == version:
            return
        self._invalid[key] = version
        message = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        log.warning("%s is invalid and is not reconciled: %s", _describe(obj), message)
        if self.events is not None:
            task = asyncio.get_running_loop().create_task(
                self.events.warning(ObjectRef.of(obj), INVALID_SPEC, message)
            )
            _background.add(task)
            task.add_done_callback(_background.discard)


_background: set[asyncio.Task[Any]] = set()


def _describe(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    return f"{obj.get('kind', 'object')} {meta.get('namespace', '')}/{meta.get('name', '')}"
