"""Load-balancing strategies as pure functions (k8gb.md §5).

Each takes this cluster's tag, its own healthy targets (empty when the host is not Healthy) and the
peers' targets by geo tag (only peers that answered with at least one address), and returns the
final target set of the `<host>` record. Per-query ordering (shuffle, weights, geo) happens where the
record is served, driven by the labels from `record_labels`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from app.domain.gslb import Strategy, StrategyType


def _union(*groups: Sequence[str]) -> list[str]:
    seen: dict[str, None] = {}
    for group in groups:
        for ip in group:
            seen.setdefault(ip, None)
    return list(seen)


def _all_peers(peers: Mapping[str, Sequence[str]]) -> list[str]:
    return _union(*(peers[tag] for tag in sorted(peers)))


def final_targets(
    strategy: Strategy,
    own_tag: str,
    local: Sequence[str],
    peers: Mapping[str, Sequence[str]],
) -> list[str]:
    peers = {tag: list(ips) for tag, ips in peers.items() if ips and tag != own_tag}
    if not peers:
        return list(dict.fromkeys(local))
    if strategy.type == StrategyType.FAILOVER:
        primary = strategy.primary_geo_tag or ""
        if own_tag == primary:
            return list(dict.fromkeys(local)) if local else _all_peers(peers)
        if primary in peers:
            return list(peers[primary])
        return _union(local, _all_peers(peers))
    return _union(local, _all_peers(peers))


def targets_by_tag(
    own_tag: str, local: Sequence[str], peers: Mapping[str, Sequence[str]]
) -> dict[str, list[str]]:
    merged = {tag: list(ips) for tag, ips in peers.items() if ips and tag != own_tag}
    if local:
        merged[own_tag] = list(local)
    return merged


def record_labels(
    strategy: Strategy, final: Sequence[str], by_tag: Mapping[str, Sequence[str]]
) -> tuple[tuple[str, str], ...]:
    """`strategy: <type>` plus k8gb's `weight-<geo>-<index>-<weight>: <ip>` for weighted round robin."""
    labels: list[tuple[str, str]] = [("strategy", strategy.type)]
    if strategy.type == StrategyType.ROUND_ROBIN and strategy.weight:
        chosen = set(final)
        for tag in sorted(strategy.weight):
            ips = [ip for ip in by_tag.get(tag, []) if ip in chosen]
            for index, ip in enumerate(ips):
                labels.append((f"weight-{tag}-{index}-{strategy.weight[tag]}", ip))
    return tuple(labels)
