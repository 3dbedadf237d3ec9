"""An informer's cache: the last seen version of each object, kept as compact JSON.

Why encoded: a parsed Kubernetes object is five to six times the size of its JSON (a Gslb with its
status: 5.4 KB of dicts and strings against 1 KB of bytes), and a controller holds five kinds of
object per Gslb; at 10,000 Gslbs that was most of the process's memory. Decoding with orjson costs
a few microseconds per read, and every read gets a private copy, so a reader that changes what it
read cannot corrupt the cache (client-go's caches rely on callers not doing that).

`keep` trims what is stored to what readers use (a Service's existence, an EndpointSlice's
readiness); handlers still receive every event's whole object.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import orjson

Obj = dict[str, Any]
ObjKey = tuple[str, str]  # namespace ("" when cluster-scoped), name


def resource_version(obj: Obj | None) -> str:
    return str(((obj or {}).get("metadata") or {}).get("resourceVersion") or "")


class ObjectTable:
    """(namespace, name) → the object's last version; a mapping of decoded copies, stored encoded."""

    __slots__ = ("_keep", "_rows")

    def __init__(self, keep: Callable[[Obj], Obj] | None = None) -> None:
        self._keep = keep
        self._rows: dict[ObjKey, tuple[str, bytes]] = {}

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, key: object) -> bool:
        return key in self._rows

    def __iter__(self) -> Iterator[ObjKey]:
        return iter(list(self._rows))

    def get(self, key: ObjKey) -> Obj | None:
        """A private copy of the object, or None."""
        row = self._rows.get(key)
        return orjson.loads(row[1]) if row is not None else None

    def encoded(self, key: ObjKey) -> bytes | None:
        row = self._rows.get(key)
        return row[1] if row is not None else None

    def version(self, key: ObjKey) -> str | None:
        """The stored resourceVersion ("" when the object had none), or None when absent."""
        row = self._rows.get(key)
        return row[0] if row is not None else None

    def put(self, key: ObjKey, obj: Obj) -> None:
        kept = self._keep(obj) if self._keep is not None else obj
        # A copy of exactly the encoded size: orjson's result is its larger working buffer shrunk in
        # place, and the tail it gives back is too small for the next one (measured: 4 KB held per
        # 1 KB Gslb, 39 MB instead of 10 at 10,000).
        self._rows[key] = (resource_version(obj), bytes(memoryview(orjson.dumps(kept))))

    def pop(self, key: ObjKey) -> bytes | None:
        """Remove the object; its encoded last version, or None."""
        row = self._rows.pop(key, None)
        return row[1] if row is not None else None

    def values(self) -> list[Obj]:
        return [orjson.loads(data) for _, data in list(self._rows.values())]


def metadata_only(*fields: str) -> Callable[[Obj], Obj]:
    """A `keep` that stores only these metadata fields (name, namespace and resourceVersion always)."""
    wanted = ("namespace", "name", "resourceVersion", *fields)

    def keep(obj: Obj) -> Obj:
        meta = obj.get("metadata") or {}
        return {"metadata": {k: meta[k] for k in wanted if k in meta}}

    return keep
