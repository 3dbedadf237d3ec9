"""The store contract: where Gslbs live, with Kubernetes object semantics, and a change feed.

Both stores (SQLite for embedded mode, custom resources for kubernetes mode) implement `GslbStore`.
Errors are Kubernetes-shaped so the API maps them one to one onto `Status` responses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from app.domain.gslb import Gslb, GslbStatus


@dataclass(frozen=True, slots=True, order=True)
class ObjectKey:
    group: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name} ({self.group})"

    @classmethod
    def of(cls, gslb: Gslb) -> ObjectKey:
        return cls(gslb.group, gslb.namespace, gslb.name)


class StoreError(Exception):
    """Base of the store's errors; `reason` is the Kubernetes Status reason.

    `server_message` is the API server's own Status message when one answered (kubernetes mode): the
    REST API shows it as is, as kubectl does, instead of wrapping it in a message of its own.
    """

    reason = "InternalError"
    code = 500

    def __init__(self, message: str = "", *, server_message: str | None = None) -> None:
        super().__init__(message)
        self.server_message = server_message


class NotFound(StoreError):
    reason = "NotFound"
    code = 404


class AlreadyExists(StoreError):
    reason = "AlreadyExists"
    code = 409


class Conflict(StoreError):
    """A write named a stale resourceVersion."""

    reason = "Conflict"
    code = 409


class Unavailable(StoreError):
    """The backing store cannot take writes now (locked, disk full, API server down)."""

    reason = "ServiceUnavailable"
    code = 503


class TooManyRequests(StoreError):
    """Not served now, to protect what is behind (TokenReviews to the API server); `retry_after` seconds."""

    reason = "TooManyRequests"
    code = 429

    def __init__(self, message: str = "", *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class EventType(StrEnum):
    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"


@dataclass(frozen=True, slots=True)
class WatchEvent:
    type: EventType
    object: Gslb
    spec_changed: bool = True  # False for status-only writes: the reconciler ignores those
    # This write set or changed `k8gb.io/traceparent` / `k8gb.io/traceparent-generation`: trace
    # annotations a write did not touch were recorded by an earlier one, which is not this write's cause
    # (`carry.cause_of_write`).
    trace_written: bool = False
    marker_written: bool = False


class GslbStore(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def get(self, key: ObjectKey) -> Gslb: ...

    async def list(self, group: str, namespace: str | None = None) -> tuple[list[Gslb], str]:
        """Objects and the store's resourceVersion at the time of the list."""
        ...

    # Writes take `dry_run` (the API's `dryRun=All`): everything is checked and the answer is what the
    # write would return, but nothing is stored and nobody is told; a created object has no uid or
    # resourceVersion, an updated one keeps its resourceVersion (as the API server answers).

    async def create(self, gslb: Gslb, *, dry_run: bool = False) -> Gslb: ...

    async def update(self, gslb: Gslb, *, dry_run: bool = False) -> Gslb:
        """Replace metadata (labels, annotations...) and spec; 409 when resourceVersion is stale."""
        ...

    async def update_status(
        self,
        key: ObjectKey,
        status: GslbStatus,
        resource_version: str | None = None,
        *,
        dry_run: bool = False,
    ) -> Gslb: ...

    async def write_status(self, key: ObjectKey, status: GslbStatus) -> None:
        """`update_status` for a writer that needs nothing back (the reconciler), so a store may skip
        building the stored object from its reply."""
        ...

    async def delete(
        self,
        key: ObjectKey,
        resource_version: str | None = None,
        *,
        dry_run: bool = False,
        propagation: str | None = None,
    ) -> Gslb:
        """`propagation`: DeleteOptions' propagationPolicy for the object's dependents (None: the
        store's default); embedded mode has no dependents."""
        ...

    def watch(self) -> AsyncIterator[WatchEvent]:
        """Every change after the call, in order, across both API groups."""
        ...
