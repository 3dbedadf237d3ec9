"""The change-set rules every provider enforces (the in-memory oracle's, ExternalDNS-style).

A change set is checked whole before anything is written: well-formed (`check_shape`), then
consistent with what the provider holds (`check_against`: create must not exist, update and delete
must exist and name the targets held now, so a stale plan cannot overwrite a peer's write).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from app.domain.endpoint import Changes, Endpoint
from app.providers.base import ChangeConflictError, ProviderError

Key = tuple[str, str]


def norm_name(name: str) -> str:
    return name.lower().rstrip(".")


def norm_targets(endpoint: Endpoint) -> tuple[str, ...]:
    """Targets compared as a set; names case-insensitively and without the trailing dot."""
    if endpoint.record_type in {"NS", "CNAME", "PTR", "MX", "SRV"}:
        return tuple(sorted({norm_name(t) for t in endpoint.targets}))
    return tuple(sorted(set(endpoint.targets)))


def in_zone(name: str, zone: str) -> bool:
    name, zone = norm_name(name), norm_name(zone)
    return name == zone or name.endswith("." + zone)


def check_shape(zone: str, changes: Changes, record_types: Iterable[str] | None = None) -> None:
    """Structural rules: names inside the zone, targets present, each key in one list only."""
    allowed = set(record_types) if record_types is not None else None
    if len(changes.update_old) != len(changes.update_new):
        raise ProviderError("update_old and update_new must pair up one to one")
    for old, new in zip(changes.update_old, changes.update_new, strict=True):
        if old.key != new.key:
            raise ProviderError(
                f"update pairs {old.dns_name} {old.record_type} with {new.dns_name} {new.record_type}"
            )
    seen: dict[Key, str] = {}
    for kind, endpoints in (
        ("create", changes.create),
        ("update", changes.update_new),
        ("delete", changes.delete),
    ):
        for endpoint in endpoints:
            if endpoint.key in seen:
                first = seen[endpoint.key]
                raise ProviderError(
                    f"{endpoint.dns_name} {endpoint.record_type} appears twice ({first} and {kind})"
                )
            seen[endpoint.key] = kind
            if not in_zone(endpoint.dns_name, zone):
                raise ProviderError(f"{endpoint.dns_name} is not inside zone {zone}")
            if allowed is not None and endpoint.record_type not in allowed:
                raise ProviderError(
                    f"{endpoint.dns_name}: record type {endpoint.record_type} is not supported here"
                )
            if kind != "delete" and not endpoint.targets:
                raise ProviderError(
                    f"cannot {kind} {endpoint.dns_name} {endpoint.record_type} without targets"
                )
            if kind != "delete" and endpoint.ttl < 0:
                raise ProviderError(f"{endpoint.dns_name}: negative TTL {endpoint.ttl}")


def check_against(held: Mapping[Key, Endpoint], changes: Changes) -> None:
    """Consistency with what is held now; raises ChangeConflictError naming the first offending record."""
    for endpoint in changes.create:
        if endpoint.key in held:
            raise ChangeConflictError(
                f"cannot create {endpoint.dns_name} {endpoint.record_type}: it already exists"
            )
    for kind, endpoints in (("update", changes.update_old), ("delete", changes.delete)):
        for endpoint in endpoints:
            current = held.get(endpoint.key)
            if current is None:
                raise ChangeConflictError(
                    f"cannot {kind} {endpoint.dns_name} {endpoint.record_type}: it does not exist"
                )
            if norm_targets(current) != norm_targets(endpoint):
                raise ChangeConflictError(
                    f"cannot {kind} {endpoint.dns_name} {endpoint.record_type}: it holds "
                    f"{list(norm_targets(current))}, not {list(norm_targets(endpoint))} (changed meanwhile)"
                )


def applied(held: Mapping[Key, Endpoint], changes: Changes) -> dict[Key, Endpoint]:
    """The state after a checked change set (a new mapping; `held` is not touched)."""
    result = dict(held)
    for endpoint in changes.delete:
        result.pop(endpoint.key, None)
    for endpoint in (*changes.update_new, *changes.create):
        result[endpoint.key] = canonical(endpoint)
    return result


def canonical(endpoint: Endpoint) -> Endpoint:
    """Lower-case names without trailing dots and sorted targets: how providers report records."""
    return Endpoint(
        dns_name=norm_name(endpoint.dns_name),
        targets=norm_targets(endpoint),
        record_type=endpoint.record_type.upper(),
        ttl=endpoint.ttl,
        labels=endpoint.labels,
    )
