"""What the Gslb endpoints do, kept out of the handlers (style.md §A3.7): check, validate, stamp, store.

Keyword-only functions over a `GslbStore`. Store errors become Kubernetes Status responses here, named
after the object (`gslbs.k8gb.io "name" not found`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from app.api.bodies import merge_patch
from app.api.errors import ApiError, bad_request, store_errors
from app.api.tracemark import stamp_trace, traceparent_of
from app.domain import objectmeta
from app.domain.gslb import (
    KIND,
    TRACE_ANNOTATIONS,
    TRACE_GENERATION_ANNOTATION,
    TRACEPARENT_ANNOTATION,
    VERSION,
    Gslb,
    GslbStatus,
    reconciled_annotations,
    with_defaults,
)
from app.domain.migration import migration_labels
from app.domain.status import StatusCause, causes_from_errors, failure, invalid
from app.stores.base import Conflict, GslbStore, ObjectKey

# A prefix to which the store appends 5 of [a-z0-9] makes a valid name.
GENERATE_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*[-.]?$"
_GENERATE_NAME_RE = re.compile(GENERATE_NAME_PATTERN)
GENERATE_NAME_MAX_LENGTH = 248  # 253 with the suffix

# A PUT without resourceVersion or a PATCH is "last write wins": writes to one object from this process
# take turns, and a concurrent change made elsewhere (a status write, another replica) makes it re-apply
# to the fresh object, for as long as the API server keeps retrying such a write (its request timeout).
_RETRY_SECONDS = 30.0


class _TakingTurns:
    """One lock per object key, alive only while someone holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[ObjectKey, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def turn(self, key: ObjectKey) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (None, 0))
        lock = lock or asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


_writes = _TakingTurns()


def _validated[M: BaseModel](model: type[M], document: Any) -> M:
    """Validate as the API server decodes JSON: no coercion (`"5"` or `false` is not an integer)."""
    return model.model_validate_json(json.dumps(document), strict=True)


def _invalid(group: str, name: str, causes: list[StatusCause]) -> ApiError:
    return ApiError(invalid(KIND, group, name, causes))


def _identity(body: Mapping[str, Any], *, group: str, namespace: str, name: str | None) -> dict[str, Any]:
    """`body` with apiVersion, kind, namespace (and name) filled from the URL; 400 when they disagree."""
    result = dict(body)
    expected = f"{group}/{VERSION}"
    api_version = result.setdefault("apiVersion", expected)
    if api_version != expected:
        raise bad_request(
            f"the API version in the data ({api_version}) does not match "
            f"the expected API version ({expected})"
        )
    kind = result.setdefault("kind", KIND)
    if kind != KIND:
        raise bad_request(f"the kind in the data ({kind}) does not match the expected kind ({KIND})")
    metadata = result.get("metadata")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        cause = StatusCause(reason="FieldValueInvalid", field="metadata", message="must be an object")
        raise _invalid(group, name or "", [cause])
    metadata = dict(metadata)
    if metadata.get("namespace") in (None, ""):
        metadata["namespace"] = namespace
    elif metadata["namespace"] != namespace:
        raise bad_request(
            f"the namespace of the provided object ({metadata['namespace']}) does not match "
            f"the namespace sent on the request ({namespace})"
        )
    if name is None:
        if metadata.get("name") == "":
            del metadata["name"]  # unset: made from generateName
    else:
        if metadata.get("name") in (None, ""):
            metadata["name"] = name
        elif metadata["name"] != name:
            raise bad_request(
                f"the name of the object ({metadata['name']}) does not match the name on the URL ({name})"
            )
    result["metadata"] = metadata
    return result


def to_gslb(body: Mapping[str, Any], *, group: str, namespace: str, name: str | None = None) -> Gslb:
    """Validate a client's Gslb for this URL and apply k8gb's defaults; 400/422 on bad input."""
    checked = _identity(body, group=group, namespace=namespace, name=name)
    checked.pop("status", None)  # the status subresource's: ignored here, so not validated either
    shown = name or str(checked["metadata"].get("name") or "")
    try:
        gslb = _validated(Gslb, checked)
    except ValidationError as exc:
        raise _invalid(group, shown, causes_from_errors(exc.errors())) from exc
    prefix = gslb.metadata.generate_name
    if not gslb.metadata.name:
        if not prefix:
            cause = StatusCause(
                reason="FieldValueRequired", field="metadata.name", message="name or generateName is required"
            )
            raise _invalid(group, shown, [cause])
        if len(prefix) > GENERATE_NAME_MAX_LENGTH or not _GENERATE_NAME_RE.fullmatch(prefix):
            message = (
                "with 5 random characters appended it must be a valid name (lowercase RFC 1123 subdomain)"
            )
            cause = StatusCause(reason="FieldValueInvalid", field="metadata.generateName", message=message)
            raise _invalid(group, prefix, [cause])
    _check_metadata(gslb, group, shown)
    return with_defaults(gslb)


def _check_metadata(gslb: Gslb, group: str, shown: str) -> None:
    """422 unless labels and annotations pass the API server's checks.

    Here, not in the model: the model also reads stored objects, and one stored before these checks
    must stay readable. Run on the client's object and again on the object to store, whose trace
    annotations this server adds (as the API server validates after mutating admission).
    """
    causes = objectmeta.metadata_causes(gslb.metadata.labels, gslb.metadata.annotations)
    if causes:
        raise _invalid(group, shown, causes)


def _keep_trace(gslb: Gslb, current: Gslb) -> Gslb:
    """A write that changes nothing a reconcile reads leaves the recorded cause of the current generation
    in place when it names no trace annotation itself: a PUT of a manifest as it was applied
    (`gslb apply` again) changes nothing, and resyncs keep linking to the write that made the generation.
    One that sets another traceparent beside the marker as it was (a PATCH of the traceparent alone, a
    copy of an earlier read) caused no generation: the marker goes, so the new context claims none."""
    mine = dict(gslb.metadata.annotations or {})
    if any(k in TRACE_ANNOTATIONS for k in mine):
        marker = mine.get(TRACE_GENERATION_ANNOTATION)
        stale = marker is not None and marker == (current.metadata.annotations or {}).get(
            TRACE_GENERATION_ANNOTATION
        )
        if stale and traceparent_of(gslb) != traceparent_of(current):
            del mine[TRACE_GENERATION_ANNOTATION]
            metadata = gslb.metadata.model_copy(update={"annotations": mine or None})
            return gslb.model_copy(update={"metadata": metadata})
        return gslb
    kept = {k: v for k, v in (current.metadata.annotations or {}).items() if k in TRACE_ANNOTATIONS}
    if not kept:
        return gslb
    metadata = gslb.metadata.model_copy(update={"annotations": {**mine, **kept}})
    return gslb.model_copy(update={"metadata": metadata})


def _reconciled(gslb: Gslb) -> tuple[dict[str, str], dict[str, str]]:
    """What a reconcile reads besides the spec: k8gb's annotations, and the migration labels (k8gb's
    legacy runtime and migrator watch them)."""
    return reconciled_annotations(gslb.metadata.annotations), migration_labels(gslb.metadata.labels)


def _spec(gslb: Gslb) -> dict[str, Any]:
    return gslb.spec.model_dump(mode="json", by_alias=True, exclude_none=True)


def _with_resource_version(gslb: Gslb, resource_version: str | None) -> Gslb:
    metadata = gslb.metadata.model_copy(update={"resource_version": resource_version})
    return gslb.model_copy(update={"metadata": metadata})


@dataclass(frozen=True, slots=True)
class _Desired:
    gslb: Gslb
    pinned_resource_version: str | None  # the client's precondition; None: last write wins
    caller_set_traceparent: bool
    caller_marker: str | None = None  # the generation marker the client sent with its traceparent


async def create_gslb(
    *,
    store: GslbStore,
    group: str,
    namespace: str,
    body: Mapping[str, Any],
    headers: Mapping[str, str],
    dry_run: bool = False,
) -> Gslb:
    gslb = to_gslb(body, group=group, namespace=namespace)
    gslb = stamp_trace(
        gslb,
        generation=1,
        caller_set=traceparent_of(gslb) is not None,
        headers=headers,
        caller_marker=_marker(gslb.metadata.annotations),
    )
    _check_metadata(gslb, group, gslb.name or gslb.metadata.generate_name or "")
    with store_errors(group, gslb.name or gslb.metadata.generate_name or ""):
        return await store.create(_with_resource_version(gslb, None), dry_run=dry_run)


async def _update(
    store: GslbStore,
    key: ObjectKey,
    desired_of: Callable[[Gslb], _Desired],
    headers: Mapping[str, str],
    dry_run: bool,
) -> Gslb:
    """Read, derive the new object, stamp the trace when the spec changes, write; retry unpinned writes."""
    async with _writes.turn(key):
        return await _update_in_turn(store, key, desired_of, headers, dry_run)


async def _update_in_turn(
    store: GslbStore,
    key: ObjectKey,
    desired_of: Callable[[Gslb], _Desired],
    headers: Mapping[str, str],
    dry_run: bool,
) -> Gslb:
    deadline = time.monotonic() + _RETRY_SECONDS
    with store_errors(key.group, key.name):
        while True:
            current = await store.get(key)
            desired = desired_of(current)
            gslb = desired.gslb
            spec_changed = _spec(gslb) != _spec(current)
            if spec_changed or _reconciled(gslb) != _reconciled(current):
                # A change that reconciles (the spec, or an annotation a reconcile reads) records this
                # caller, for the generation it leaves: the reconcile it causes joins this trace.
                generation = (current.metadata.generation or 1) + (1 if spec_changed else 0)
                # Within one generation a marker tells no write from another: a traceparent sent with
                # the marker of the current generation is a copy of an earlier read, not a context.
                copied = not spec_changed and desired.caller_marker is not None
                gslb = stamp_trace(
                    gslb,
                    generation=generation,
                    caller_set=desired.caller_set_traceparent and not copied,
                    headers=headers,
                    caller_marker=desired.caller_marker,
                )
                _check_metadata(gslb, key.group, key.name)
            else:
                gslb = _keep_trace(gslb, current)
            pinned = desired.pinned_resource_version
            gslb = _with_resource_version(gslb, pinned or current.metadata.resource_version)
            try:
                return await store.update(gslb, dry_run=dry_run)
            except Conflict:
                if pinned or time.monotonic() >= deadline:
                    raise


async def replace_gslb(
    *,
    store: GslbStore,
    group: str,
    namespace: str,
    name: str,
    body: Mapping[str, Any],
    headers: Mapping[str, str],
    dry_run: bool = False,
) -> Gslb:
    requested = to_gslb(body, group=group, namespace=namespace, name=name)

    def desired(current: Gslb) -> _Desired:
        theirs = traceparent_of(requested)
        caller_set = theirs is not None and theirs != traceparent_of(current)  # not merely carried over
        marker = _marker(requested.metadata.annotations)
        return _Desired(requested, requested.metadata.resource_version, caller_set, marker)

    return await _update(store, ObjectKey(group, namespace, name), desired, headers, dry_run)


def _marker(annotations: Mapping[str, Any] | None) -> str | None:
    marker = (annotations or {}).get(TRACE_GENERATION_ANNOTATION)
    return None if marker is None else str(marker)


def _patched_annotations(patch: Mapping[str, Any]) -> Mapping[str, Any]:
    """The annotations a merge patch sets (None values delete)."""
    metadata = patch.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    return annotations if isinstance(annotations, dict) else {}


async def patch_gslb(
    *,
    store: GslbStore,
    group: str,
    namespace: str,
    name: str,
    patch: Mapping[str, Any],
    headers: Mapping[str, str],
    dry_run: bool = False,
) -> Gslb:
    """RFC 7386 merge patch; a `metadata.resourceVersion` in the patch is a precondition."""
    metadata = patch.get("metadata")
    pins = isinstance(metadata, dict) and metadata.get("resourceVersion") is not None
    patched = _patched_annotations(patch)
    theirs = patched.get(TRACEPARENT_ANNOTATION)
    caller_marker = _marker(patched)

    def desired(current: Gslb) -> _Desired:
        merged = merge_patch(current.wire(), dict(patch))
        gslb = to_gslb(merged, group=group, namespace=namespace, name=name)
        caller_set = theirs is not None and theirs != traceparent_of(current)  # not the current one again
        return _Desired(gslb, gslb.metadata.resource_version if pins else None, caller_set, caller_marker)

    return await _update(store, ObjectKey(group, namespace, name), desired, headers, dry_run)


async def replace_status(
    *, store: GslbStore, group: str, namespace: str, name: str, body: Mapping[str, Any], dry_run: bool = False
) -> Gslb:
    """PUT .../status: only `status` of the body is taken (and its resourceVersion as precondition)."""
    checked = _identity(body, group=group, namespace=namespace, name=name)
    try:
        given = checked.get("status")
        status = _validated(GslbStatus, {} if given is None else given)
    except ValidationError as exc:
        raise _invalid(group, name, causes_from_errors(exc.errors(), prefix=("status",))) from exc
    resource_version = checked["metadata"].get("resourceVersion")
    if resource_version is not None and not isinstance(resource_version, str):
        cause = StatusCause(field="metadata.resourceVersion", message="must be a string")
        raise _invalid(group, name, [cause])
    with store_errors(group, name):
        return await store.update_status(
            ObjectKey(group, namespace, name), status, resource_version, dry_run=dry_run
        )


async def delete_gslb(
    *,
    store: GslbStore,
    group: str,
    namespace: str,
    name: str,
    options: Mapping[str, Any] | None,
    headers: Mapping[str, str] | None = None,
    dry_run: bool = False,
    propagation: str | None = None,
) -> Gslb:
    """DELETE with optional DeleteOptions: `preconditions` (resourceVersion, uid), `dryRun`,
    `propagationPolicy` (the body's, else the query's `dry_run` and `propagation`).

    When the request has a trace context, it is recorded on the object first (for its current
    generation, without changing the spec), so the reconcile that withdraws the records joins the
    caller's trace like any other write.
    """
    options = options or {}
    uid, resource_version = _preconditions(options.get("preconditions"))
    body_dry_run = options.get("dryRun")
    if body_dry_run is not None and not isinstance(body_dry_run, list):
        raise bad_request("DeleteOptions.dryRun must be an array of strings")
    dry_run = dry_run_of(body_dry_run, "DeleteOptions.dryRun") or dry_run
    propagation = (
        propagation_of(options.get("propagationPolicy"), "DeleteOptions.propagationPolicy") or propagation
    )
    key = ObjectKey(group, namespace, name)
    async with _writes.turn(key):
        return await _delete_in_turn(store, key, uid, resource_version, headers or {}, dry_run, propagation)


async def _delete_in_turn(
    store: GslbStore,
    key: ObjectKey,
    uid: str | None,
    pinned: str | None,
    headers: Mapping[str, str],
    dry_run: bool,
    propagation: str | None,
) -> Gslb:
    """Record the caller's context, then delete. Without a resourceVersion precondition the delete is
    "last write wins": a status write between the read and the stamp re-reads and stamps again."""
    deadline = time.monotonic() + _RETRY_SECONDS
    with store_errors(key.group, key.name):
        while True:
            current = await store.get(key)
            if uid is not None and current.metadata.uid != uid:
                message = (
                    f"Precondition failed: UID in precondition: {uid}, "
                    f"UID in object meta: {current.metadata.uid}"
                )
                raise ApiError(failure(409, "Conflict", message))
            if dry_run or (pinned is not None and pinned != current.metadata.resource_version):
                # The store checks the precondition itself: a stale one is its 409, and one the object has
                # reached meanwhile is a delete it makes, so this call is the request's own, dry run and all.
                return await store.delete(key, pinned, dry_run=dry_run, propagation=propagation)
            stamped = stamp_trace(
                current, generation=current.metadata.generation or 1, caller_set=False, headers=headers
            )
            if stamped.metadata.annotations != current.metadata.annotations and traceparent_of(stamped):
                try:
                    current = await store.update(
                        _with_resource_version(stamped, current.metadata.resource_version)
                    )
                except Conflict:
                    if pinned or time.monotonic() >= deadline:
                        raise
                    continue
            return await store.delete(
                key, current.metadata.resource_version if pinned else None, propagation=propagation
            )


def _preconditions(given: Any) -> tuple[str | None, str | None]:
    """DeleteOptions.preconditions as (uid, resourceVersion): an object of strings or nulls, as the API
    server decodes it (a wrong type is a 400, never a precondition silently dropped or coerced)."""
    if given is None:
        return None, None
    if not isinstance(given, dict):
        raise bad_request("DeleteOptions.preconditions must be an object")
    uid, resource_version = given.get("uid"), given.get("resourceVersion")
    for field, value in (("uid", uid), ("resourceVersion", resource_version)):
        if value is not None and not isinstance(value, str):
            raise bad_request(f"DeleteOptions.preconditions.{field} must be a string")
    return uid, resource_version


PROPAGATION_POLICIES = ("Orphan", "Background", "Foreground")


def dry_run_of(values: Any, field: str = "dryRun") -> bool:
    """A write's `dryRun` (query or DeleteOptions): "All" or nothing, as the API server takes it; any
    other value is refused, never ignored (a client asking for a dry run must not get a real write)."""
    if values is None:
        return False
    items = values if isinstance(values, list) else [values]
    for value in items:
        if value != "All":
            raise bad_request(f'{field}: Unsupported value: {json.dumps(value)}: supported values: "All"')
    return bool(items)


def propagation_of(value: Any, field: str = "propagationPolicy") -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and value in PROPAGATION_POLICIES:
        return value
    supported = ", ".join(f'"{p}"' for p in PROPAGATION_POLICIES)
    raise bad_request(f"{field}: Unsupported value: {json.dumps(value)}: supported values: {supported}")
