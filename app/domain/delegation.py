"""Edge delegation (k8gb.md §4.6): the NS + glue records each cluster keeps in the parent zone.

Every cluster publishes, in the parent zone, the NS RRset of the load-balanced zone and its own glue
A record. The NS RRset is shared by all clusters, the glue A records are not, so ownership is:
a cluster adds or removes only its own name in the NS RRset (keeping every other cluster's, as
k8gb's Infoblox provider keeps other clusters' `delegate_to` entries) and only ever creates,
updates or deletes its own glue A. These functions turn that rule into a change set for a provider.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from app.domain.endpoint import Changes, Endpoint
from app.domain.plan import plan
from app.domain.zones import ZoneConfig


class GlueUnknown(Exception):
    """This cluster's DNS address is not known (yet): there is no glue to publish, so the delegation
    waits, as k8gb waits for its exposed IPs. `waiting` is False when it cannot become known without a
    change of configuration (k8gb's CoreDNS Service lookup finding none or several)."""

    def __init__(self, message: str, *, waiting: bool = True) -> None:
        super().__init__(message)
        self.waiting = waiting

    @property
    def reason(self) -> str:
        return "WaitingForDNSAddress" if self.waiting else "DNSAddressError"

    def __str__(self) -> str:
        lead = "waiting for this cluster's DNS address" if self.waiting else "no DNS address for this cluster"
        return f"{lead}: {self.args[0]}"


def _norm(name: str) -> str:
    return name.lower().rstrip(".")


def glue_names(zone: ZoneConfig, tags: Iterable[str], glue_prefix: str) -> list[str]:
    """Sorted, de-duplicated glue names of the given geo tags."""
    return sorted({_norm(zone.glue_name(glue_prefix, tag)) for tag in tags})


def delegation_endpoints(
    zone: ZoneConfig,
    own_tag: str,
    active_tags: Sequence[str],
    own_ips: Sequence[str],
    glue_prefix: str,
    ttl: int,
) -> list[Endpoint]:
    """k8gb's delegation records: NS `<zone>` → the active clusters' glue names, own glue A → own IPs.

    The own tag is always active. Without own IPs there is nothing to delegate to (k8gb waits).
    """
    if not own_ips:
        raise ValueError(
            f"no exposed IPs for {own_tag!r}: cannot publish a glue record for {zone.load_balanced_zone}"
        )
    if ttl < 1:
        raise ValueError(f"NS record TTL must be at least 1, got {ttl}")
    try:
        ips = sorted({str(ipaddress.IPv4Address(ip)) for ip in own_ips}, key=ipaddress.IPv4Address)
    except ValueError as exc:
        raise ValueError(f"glue records need IPv4 addresses: {exc}") from None
    names = glue_names(zone, [own_tag, *active_tags], glue_prefix)
    own = _norm(zone.glue_name(glue_prefix, own_tag))
    return [
        Endpoint(dns_name=_norm(zone.load_balanced_zone), targets=tuple(names), record_type="NS", ttl=ttl),
        Endpoint(dns_name=own, targets=tuple(ips), record_type="A", ttl=ttl),
    ]


def own_endpoints(
    zone: ZoneConfig, own_tag: str, glue_prefix: str, records: Iterable[Endpoint]
) -> list[Endpoint]:
    """The part of the parent zone this cluster may plan against: the shared NS RRset and its own glue A."""
    keys = {
        (_norm(zone.load_balanced_zone), "NS"),
        (_norm(zone.glue_name(glue_prefix, own_tag)), "A"),
    }
    return [e for e in records if e.key in keys]


def merge_delegation(
    zone: ZoneConfig,
    own_tag: str,
    glue_prefix: str,
    desired: Sequence[Endpoint],
    current: Sequence[Endpoint],
) -> list[Endpoint]:
    """Desired records with the shared NS RRset merged: own name added, other clusters' names kept.

    A peer's name enters the NS RRset only when its glue A is in the parent zone already: a name
    without an address would be a lame delegation (and Infoblox cannot even store one).

    The RRset has one TTL, and clusters may be configured with different NS_RECORD_TTLs: the cluster
    whose name sorts first in it decides, the others keep the TTL held. Otherwise each would put its
    own back every round, for ever.
    """
    ns_key = (_norm(zone.load_balanced_zone), "NS")
    own = _norm(zone.glue_name(glue_prefix, own_tag))
    with_glue = {e.key[0] for e in current if e.record_type == "A"}
    held_ns = next((e for e in current if e.key == ns_key), None)
    kept = {_norm(t) for t in held_ns.targets} - {own} if held_ns else set()
    merged: list[Endpoint] = []
    for endpoint in desired:
        if endpoint.key == ns_key:
            wanted = {_norm(t) for t in endpoint.targets}
            peers = {t for t in wanted - {own} if t in with_glue}
            names = (wanted & {own}) | peers | kept
            ttl = endpoint.ttl if held_ns is None or min(names) == own else held_ns.ttl
            endpoint = Endpoint(endpoint.dns_name, tuple(sorted(names)), "NS", ttl, endpoint.labels)
        merged.append(endpoint)
    return merged


def delegation_changes(
    zone: ZoneConfig,
    own_tag: str,
    active_tags: Sequence[str],
    own_ips: Sequence[str],
    glue_prefix: str,
    ttl: int,
    current: Sequence[Endpoint],
) -> Changes:
    """What this cluster must apply to the parent zone so the delegation includes it (empty when it does)."""
    desired = delegation_endpoints(zone, own_tag, active_tags, own_ips, glue_prefix, ttl)
    merged = merge_delegation(zone, own_tag, glue_prefix, desired, current)
    return plan(own_endpoints(zone, own_tag, glue_prefix, current), merged)


def withdrawal_changes(
    zone: ZoneConfig, own_tag: str, glue_prefix: str, current: Sequence[Endpoint]
) -> Changes:
    """Leaving the delegation: drop own glue A and own NS name; the last cluster out deletes the NS RRset."""
    ns_key = (_norm(zone.load_balanced_zone), "NS")
    own = _norm(zone.glue_name(glue_prefix, own_tag))
    desired: list[Endpoint] = []
    for endpoint in own_endpoints(zone, own_tag, glue_prefix, current):
        if endpoint.key == ns_key:
            others = tuple(sorted({_norm(t) for t in endpoint.targets} - {own}))
            if others:
                desired.append(Endpoint(endpoint.dns_name, others, "NS", endpoint.ttl, endpoint.labels))
    return plan(own_endpoints(zone, own_tag, glue_prefix, current), desired)
