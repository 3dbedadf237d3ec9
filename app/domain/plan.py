"""Planning is a pure function: desired vs current record sets → a change set (as ExternalDNS's plan)."""

from __future__ import annotations

from collections.abc import Iterable

from app.domain.endpoint import Changes, Endpoint


def _same(a: Endpoint, b: Endpoint) -> bool:
    return sorted(a.targets) == sorted(b.targets) and a.ttl == b.ttl and sorted(a.labels) == sorted(b.labels)


def plan(current: Iterable[Endpoint], desired: Iterable[Endpoint]) -> Changes:
    """Creates for new keys, updates where targets, TTL or labels differ, deletes for keys gone."""
    cur = {e.key: e for e in current}
    des = {e.key: e for e in desired}
    create = tuple(des[k] for k in des if k not in cur)
    update_old = tuple(cur[k] for k in des if k in cur and not _same(cur[k], des[k]))
    update_new = tuple(des[k] for k in des if k in cur and not _same(cur[k], des[k]))
    delete = tuple(cur[k] for k in cur if k not in des)
    return Changes(create=create, update_old=update_old, update_new=update_new, delete=delete)
