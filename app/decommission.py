"""`gslb decommission`: take a cluster out of the edge delegation for good (k8gb: deleting its
ZoneDelegation), zone by zone, saying what each zone needed as soon as it is done.

Running clusters never drop a peer whose glue is still in the parent zone, so a cluster that leaves
for good must be withdrawn: this one after its `gslb serve` stopped, or a dead peer by its geo tag
from any other cluster's settings.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import TextIO

from app.controller.delegation import withdraw_zone
from app.domain.endpoint import Changes
from app.domain.zones import ZoneConfig
from app.providers.base import Provider, ProviderError
from app.settings import GEOTAG, Settings


class DecommissionError(Exception):
    """The request cannot be carried out as asked; nothing was changed."""


def geo_tag(given: str | None, settings: Settings) -> str:
    """The tag to withdraw: the one given (an empty one is refused, not taken as "this cluster"),
    else CLUSTER_GEO_TAG. Compared as DNS compares names: case-insensitively."""
    tag = settings.cluster_geo_tag if given is None else given.strip()
    if not tag:
        raise DecommissionError("--geo-tag is empty: name the cluster to withdraw")
    if not GEOTAG.fullmatch(tag):
        raise DecommissionError(f"--geo-tag {tag!r}: letters, digits and '-' only")
    return tag.lower()


def chosen_zones(settings: Settings, asked: Sequence[str] | None) -> list[ZoneConfig]:
    """The configured zones, or those of them asked for (as DNS compares names)."""
    known = {z.load_balanced_zone.lower(): z for z in settings.zones}
    if not known:
        raise DecommissionError("DNS_ZONES names no zone: there is no delegation to leave")
    if not asked:
        return list(known.values())
    wanted = list(dict.fromkeys(z.strip().rstrip(".").lower() for z in asked))
    unknown = [z for z in wanted if z not in known]
    if unknown:
        raise DecommissionError(
            f"not a zone in DNS_ZONES: {', '.join(unknown)} (configured: {', '.join(known)})"
        )
    return [known[z] for z in wanted]


def describe(zone: ZoneConfig, tag: str, changes: Changes, dry_run: bool) -> list[str]:
    where = f"{zone.load_balanced_zone} (in {zone.parent_zone})"
    if not changes.has_changes:
        return [f"{where}: {tag} is not in the delegation"]
    verb = "would" if dry_run else "did"
    lines = [
        f"{where}: {verb} update {new.record_type} {new.dns_name}: "
        f"{','.join(old.targets)} -> {','.join(new.targets)}"
        for old, new in zip(changes.update_old, changes.update_new, strict=True)
    ]
    lines += [
        f"{where}: {verb} delete {gone.record_type} {gone.dns_name} {','.join(gone.targets)}"
        for gone in changes.delete
    ]
    return lines


async def decommission(
    provider: Provider,
    zones: Sequence[ZoneConfig],
    tag: str,
    glue_prefix: str,
    *,
    dry_run: bool,
    out: TextIO = sys.stdout,
) -> list[str]:
    """Withdraw `tag` zone by zone; a zone that fails does not stop the others. Each zone's outcome is
    printed as soon as it is known, so what was changed is said even when a later zone fails.
    Returns the failures, one line each."""
    failures: list[str] = []
    try:
        for zone in zones:
            try:
                changes = await withdraw_zone(provider, zone, tag, glue_prefix, apply=not dry_run)
            except (ProviderError, OSError) as exc:
                failures.append(f"cannot withdraw {tag} from {zone.load_balanced_zone}: {exc}")
                continue
            for line in describe(zone, tag, changes, dry_run):
                print(line, file=out, flush=True)
    finally:
        close = getattr(provider, "aclose", None)
        if close is not None:
            await close()
    return failures


def run(
    settings: Settings, provider: Provider, tag: str, zones: Sequence[ZoneConfig], dry_run: bool
) -> list[str]:
    return asyncio.run(decommission(provider, zones, tag, settings.gluea_prefix, dry_run=dry_run))
