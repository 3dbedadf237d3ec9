"""Remembers the versions of objects this process wrote, so their watch events do not loop back.

The sink writes the DNSEndpoint and the server source writes the embedded Ingress; both are owned by
a Gslb, and a change to an owned object reconciles its Gslb (k8gb.md §4.3). Our own write is not such
a change: the watch mappers ask `check(obj, on_foreign)`, which skips our writes' events, while a change
by anyone else (a user, an ingress controller filling in the load balancer status) still triggers the
reconcile.

The watch and the write's reply travel on different connections, and under load the event often
arrives first, before we know the version we wrote. So writers announce a write in flight
(`with own_writes.writing(kind, namespace, name)`), and an event for that object that arrives
meanwhile is decided when the reply is in: ours if it carries the version we were answered, a
foreign change otherwise (or if the write failed).
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

Obj = dict[str, Any]
ObjectId = tuple[str, str, str]  # kind, namespace, name


def _id(obj: Obj) -> ObjectId:
    meta = obj.get("metadata") or {}
    return (str(obj.get("kind") or ""), str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def _version(obj: Obj) -> tuple[str, str, str, str]:
    return (*_id(obj), str((obj.get("metadata") or {}).get("resourceVersion") or ""))


class OwnWrites:
    def __init__(self, capacity: int = 16384) -> None:
        """`capacity` bounds the versions whose events never come (a re-list skipped them); each one
        that comes is consumed by its check."""
        self._versions: OrderedDict[tuple[str, str, str, str], None] = OrderedDict()
        self._capacity = capacity
        self._writing: Counter[ObjectId] = Counter()
        self._parked: dict[ObjectId, list[tuple[Obj, Callable[[], object]]]] = {}

    @contextmanager
    def writing(self, kind: str, namespace: str, name: str) -> Iterator[None]:
        """Around a write: events for the object that arrive meanwhile wait for its reply."""
        oid = (kind, namespace, name)
        self._writing[oid] += 1
        try:
            yield
        finally:
            self._writing[oid] -= 1
            if self._writing[oid] <= 0:
                del self._writing[oid]
                for obj, on_foreign in self._parked.pop(oid, []):
                    if not self.is_own(obj):
                        on_foreign()

    def record(self, obj: Obj) -> None:
        """Note the object as returned by the API server after our write."""
        self._versions[_version(obj)] = None
        while len(self._versions) > self._capacity:
            self._versions.popitem(last=False)

    def is_own(self, obj: Obj) -> bool:
        """Whether the event is our write's (each version is asked about once: its own watch event)."""
        try:
            del self._versions[_version(obj)]
        except KeyError:
            return False
        return True

    def check(self, obj: Obj, on_foreign: Callable[[], object]) -> None:
        """Call `on_foreign()` unless `obj` is the event of our own write: now, or once a write of the
        same object in flight has its reply."""
        if self.is_own(obj):
            return
        oid = _id(obj)
        if oid in self._writing:
            self._parked.setdefault(oid, []).append((obj, on_foreign))
            return
        on_foreign()
