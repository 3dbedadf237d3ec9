"""Remembers the versions of objects this process wrote, so their watch events do not loop back.

The sink writes the DNSEndpoint and the server source writes the embedded Ingress; both are owned by
a Gslb, and a change to an owned object reconciles its Gslb (k8gb.md §4.3). Our own write is not such
a change: the watch mappers ask `is_own(obj)` and skip it, while a change by anyone else (a user, an
ingress controller filling in the load balancer status) still triggers the reconcile.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any


class OwnWrites:
    def __init__(self, capacity: int = 4096) -> None:
        self._versions: OrderedDict[tuple[str, str, str, str], None] = OrderedDict()
        self._capacity = capacity

    @staticmethod
    def _key(obj: dict[str, Any]) -> tuple[str, str, str, str]:
        meta = obj.get("metadata") or {}
        return (
            str(obj.get("kind") or ""),
            str(meta.get("namespace") or ""),
            str(meta.get("name") or ""),
            str(meta.get("resourceVersion") or ""),
        )

    def record(self, obj: dict[str, Any]) -> None:
        """Note the object as returned by the API server after our write."""
        self._versions[self._key(obj)] = None
        while len(self._versions) > self._capacity:
            self._versions.popitem(last=False)

    def is_own(self, obj: dict[str, Any]) -> bool:
        return self._key(obj) in self._versions
