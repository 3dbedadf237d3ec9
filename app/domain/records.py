"""The records a Gslb publishes, with k8gb's layout (k8gb.md §4.4): pure, from already-gathered facts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from app.domain.endpoint import Endpoint
from app.domain.gslb import Gslb, HealthStatus
from app.domain.strategies import final_targets, record_labels, targets_by_tag
from app.domain.zones import localtargets_name


@dataclass(frozen=True, slots=True)
class HostFacts:
    host: str
    health: HealthStatus
    peers: Mapping[str, Sequence[str]] = field(default_factory=dict)


def desired_endpoints(
    gslb: Gslb, own_tag: str, exposed_ips: Sequence[str], hosts: Sequence[HostFacts]
) -> list[Endpoint]:
    """`localtargets-<host>` when Healthy, then `<host>` with the strategy's final targets when non-empty."""
    strategy = gslb.spec.strategy
    ttl = strategy.ttl
    endpoints: list[Endpoint] = []
    for facts in hosts:
        local = list(exposed_ips) if facts.health == HealthStatus.HEALTHY else []
        if local:
            endpoints.append(Endpoint(localtargets_name(facts.host), tuple(local), "A", ttl))
        final = final_targets(strategy, own_tag, local, facts.peers)
        if final:
            labels = record_labels(strategy, final, targets_by_tag(own_tag, local, facts.peers))
            endpoints.append(Endpoint(facts.host, tuple(final), "A", ttl, labels))
    return endpoints


def healthy_records(endpoints: Sequence[Endpoint]) -> dict[str, list[str]]:
    """Status `healthyRecords`: every A record not starting with localtargets, with its targets."""
    return {
        e.dns_name: list(e.targets)
        for e in endpoints
        if e.record_type == "A" and not e.dns_name.startswith("localtargets")
    }
