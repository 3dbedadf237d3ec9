"""One contract, every provider: the in-memory oracle, RFC2136 against a real BIND9, Infoblox against WAPI.

Each test reads what the provider holds before, applies a change set, and checks what it holds
after, so the records a parent zone starts with (SOA, apex NS glue) are part of the baseline.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from app.domain.delegation import delegation_changes, withdrawal_changes
from app.domain.endpoint import Changes, Endpoint
from app.domain.plan import plan
from app.domain.zones import ZoneConfig
from app.providers.base import ChangeConflictError, ProviderError
from tests.providers.conftest import Subject

ZONE = ZoneConfig(parent_zone="example.com", load_balanced_zone="cloud.example.com", neg_ttl=30)
PREFIX = "gslb-ns-"
EU = "gslb-ns-eu-cloud.example.com"
US = "gslb-ns-us-cloud.example.com"
NS = Endpoint("cloud.example.com", (EU,), "NS", 30)
GLUE = Endpoint(EU, ("10.0.0.1",), "A", 30)

View = dict[tuple[str, str], tuple[tuple[str, ...], int]]


def view(records: Iterable[Endpoint]) -> View:
    return {e.key: (tuple(sorted(t.lower().rstrip(".") for t in e.targets)), e.ttl) for e in records}


async def held(subject: Subject) -> View:
    return view(await subject.provider.records(subject.parent))


async def test_created_records_are_listed(subject: Subject) -> None:
    before = await held(subject)
    await subject.provider.apply(subject.parent, Changes(create=(NS, GLUE)))
    assert await held(subject) == before | view([NS, GLUE])


async def test_update_replaces_the_targets(subject: Subject) -> None:
    await subject.provider.apply(subject.parent, Changes(create=(NS, GLUE)))
    before = await held(subject)
    moved = Endpoint(EU, ("10.0.0.3", "10.0.0.2"), "A", 30)
    await subject.provider.apply(subject.parent, Changes(update_old=(GLUE,), update_new=(moved,)))
    assert await held(subject) == before | view([moved])


async def test_delete_removes_the_records(subject: Subject) -> None:
    before = await held(subject)
    await subject.provider.apply(subject.parent, Changes(create=(NS, GLUE)))
    await subject.provider.apply(subject.parent, Changes(delete=(NS, GLUE)))
    assert await held(subject) == before


@pytest.mark.parametrize(
    ("case", "changes"),
    [
        (
            "update of a missing record next to a valid create",
            Changes(
                create=(Endpoint("cloud2.example.com", (US,), "NS", 30),),
                update_old=(Endpoint(US, ("10.9.9.9",), "A", 30),),
                update_new=(Endpoint(US, ("10.9.9.8",), "A", 30),),
            ),
        ),
        ("create of an existing record", Changes(create=(GLUE,))),
        ("delete of a missing record", Changes(delete=(Endpoint(US, ("10.1.0.1",), "A", 30),))),
        (
            "update from targets no longer held (stale plan)",
            Changes(
                update_old=(Endpoint(EU, ("10.0.0.99",), "A", 30),),
                update_new=(Endpoint(EU, ("10.0.0.2",), "A", 30),),
            ),
        ),
    ],
)
async def test_inconsistent_change_set_fails_whole(subject: Subject, case: str, changes: Changes) -> None:
    await subject.provider.apply(subject.parent, Changes(create=(NS, GLUE)))
    before = await held(subject)
    with pytest.raises(ChangeConflictError):
        await subject.provider.apply(subject.parent, changes)
    assert await held(subject) == before, case


@pytest.mark.parametrize(
    ("case", "changes"),
    [
        ("same record in create and delete", Changes(create=(GLUE,), delete=(GLUE,))),
        ("record outside the zone", Changes(create=(Endpoint("ns.example.org", ("10.0.0.1",)),))),
        ("record without targets", Changes(create=(Endpoint(US, (), "A", 30),))),
    ],
)
async def test_malformed_change_set_is_refused(subject: Subject, case: str, changes: Changes) -> None:
    before = await held(subject)
    with pytest.raises(ProviderError) as caught:
        await subject.provider.apply(subject.parent, changes)
    assert not caught.value.transient, case
    assert await held(subject) == before


async def test_reapplying_the_desired_state_changes_nothing(subject: Subject) -> None:
    provider = subject.provider
    desired = provider.adjust([NS, GLUE])
    keys = {d.key for d in desired}

    async def planned() -> Changes:
        return plan([e for e in await provider.records(subject.parent) if e.key in keys], desired)

    first = await planned()
    assert {e.key for e in first.create} == keys
    await provider.apply(subject.parent, first)
    assert not (await planned()).has_changes


async def test_two_clusters_share_the_delegation(subject: Subject) -> None:
    """k8gb §4.6 across clusters: shared NS RRset, own glue each, the last one out removes the NS."""
    provider, parent = subject.provider, subject.parent
    baseline = await held(subject)

    async def publish(tag: str, ips: list[str]) -> Changes:
        current = await provider.records(parent)
        changes = delegation_changes(ZONE, tag, ["eu", "us"], ips, PREFIX, 30, current)
        if changes.has_changes:
            await provider.apply(parent, changes)
        return changes

    async def withdraw(tag: str) -> None:
        await provider.apply(parent, withdrawal_changes(ZONE, tag, PREFIX, await provider.records(parent)))

    await publish("eu", ["10.0.0.1"])
    assert (await held(subject))[("cloud.example.com", "NS")] == ((EU,), 30)  # us has no glue yet

    await publish("us", ["10.1.0.1", "10.1.0.2"])
    await publish("eu", ["10.0.0.5"])
    assert await held(subject) == baseline | {
        ("cloud.example.com", "NS"): ((EU, US), 30),
        (EU, "A"): (("10.0.0.5",), 30),
        (US, "A"): (("10.1.0.1", "10.1.0.2"), 30),
    }
    assert not (await publish("us", ["10.1.0.2", "10.1.0.1"])).has_changes

    await withdraw("eu")
    assert await held(subject) == baseline | {
        ("cloud.example.com", "NS"): ((US,), 30),
        (US, "A"): (("10.1.0.1", "10.1.0.2"), 30),
    }
    await withdraw("us")
    assert await held(subject) == baseline
