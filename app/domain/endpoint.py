"""One neutral DNS record model shared by the planner, the providers and the DNS server (as ExternalDNS)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

RecordKey = tuple[str, str]  # lower-case name without the trailing dot, record type
DEFAULT_TTL = 30  # k8gb's, for a record that sets none


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A record set: one name, one type, its targets, TTL and free-form labels.

    Labels carry strategy data (`strategy`, `weight-<geo>-<i>-<w>`), exactly as k8gb's DNSEndpoint does,
    so that answer ordering can be done per query by whoever serves the record.
    """

    dns_name: str
    targets: tuple[str, ...]
    record_type: str = "A"
    ttl: int = 30
    labels: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> RecordKey:
        return (self.dns_name.lower().rstrip("."), self.record_type)

    def label(self, name: str) -> str | None:
        for key, value in self.labels:
            if key == name:
                return value
        return None

    def label_dict(self) -> dict[str, str]:
        return dict(self.labels)


def merge_endpoints(endpoints: Iterable[Endpoint], default_ttl: int = DEFAULT_TTL) -> Endpoint | None:
    """One served record set from the same-keyed endpoints of several owners, in owner order, as
    k8gb's CoreDNS serves several DNSEndpoints': targets without repeats, labels merged (the first
    owner's value wins), the first TTL set; None when no target is left (the name is not served)."""
    items = list(endpoints)
    if not items:
        return None
    targets = list(dict.fromkeys(t.strip() for e in items for t in e.targets if t.strip()))
    if not targets:
        return None
    labels: dict[str, str] = {}
    for endpoint in items:
        for key, value in endpoint.labels:
            labels.setdefault(key, value)
    ttl = next((e.ttl for e in items if e.ttl), default_ttl)
    return replace(items[0], targets=tuple(targets), ttl=ttl, labels=tuple(sorted(labels.items())))


@dataclass(frozen=True, slots=True)
class Changes:
    """A change set, applied whole or not at all by a provider."""

    create: tuple[Endpoint, ...] = ()
    update_old: tuple[Endpoint, ...] = ()
    update_new: tuple[Endpoint, ...] = ()
    delete: tuple[Endpoint, ...] = ()

    @property
    def has_changes(self) -> bool:
        return bool(self.create or self.update_new or self.delete)

    def count(self) -> int:
        return len(self.create) + len(self.update_new) + len(self.delete)


@dataclass(slots=True)
class ZoneRecords:
    """Everything one owner (a Gslb) publishes, grouped for the planner."""

    owner: str
    endpoints: list[Endpoint] = field(default_factory=list)
