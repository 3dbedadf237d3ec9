"""Edge delegation records and ownership (k8gb.md §4.6), table by table."""

from __future__ import annotations

import pytest

from app.domain.delegation import (
    delegation_changes,
    delegation_endpoints,
    glue_names,
    merge_delegation,
    own_endpoints,
    withdrawal_changes,
)
from app.domain.endpoint import Endpoint
from app.domain.zones import ZoneConfig

ZONE = ZoneConfig(parent_zone="example.com", load_balanced_zone="cloud.example.com", neg_ttl=30)
EU = "gslb-ns-eu-cloud.example.com"
US = "gslb-ns-us-cloud.example.com"
ZA = "gslb-ns-za-cloud.example.com"
SORTED = ("10.0.0.9", "10.0.0.10")


def ns(*names: str, ttl: int = 30) -> Endpoint:
    return Endpoint("cloud.example.com", tuple(names), "NS", ttl)


def glue(name: str, *ips: str, ttl: int = 30) -> Endpoint:
    return Endpoint(name, tuple(ips), "A", ttl)


@pytest.mark.parametrize(
    ("own", "active", "ips", "prefix", "expected"),
    [
        ("eu", [], ["10.0.0.1"], "gslb-ns-", [ns(EU), glue(EU, "10.0.0.1")]),
        (
            "eu",
            ["us", "eu"],
            ["10.0.0.10", "10.0.0.9"],
            "gslb-ns-",
            [ns(EU, US), glue(EU, "10.0.0.9", "10.0.0.10")],
        ),
        ("us", ["za", "eu"], ["10.1.0.1", "10.1.0.1"], "gslb-ns-", [ns(EU, US, ZA), glue(US, "10.1.0.1")]),
        ("eu", [], ["10.0.0.1"], "", [ns("eu-cloud.example.com"), glue("eu-cloud.example.com", "10.0.0.1")]),
    ],
    ids=["alone", "ips-sorted-numerically", "names-sorted-deduplicated", "empty-prefix"],
)
def test_delegation_endpoints(
    own: str, active: list[str], ips: list[str], prefix: str, expected: list[Endpoint]
) -> None:
    assert delegation_endpoints(ZONE, own, active, ips, prefix, 30) == expected


@pytest.mark.parametrize(
    ("ips", "ttl", "message"),
    [([], 30, "no exposed IPs"), (["10.0.0.1"], 0, "TTL"), (["not-an-ip"], 30, "IPv4")],
)
def test_delegation_endpoints_refuse_bad_input(ips: list[str], ttl: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        delegation_endpoints(ZONE, "eu", [], ips, "gslb-ns-", ttl)


def test_glue_names_of_nested_zone() -> None:
    deep = ZoneConfig(parent_zone="example.com", load_balanced_zone="a.b.example.com", neg_ttl=30)
    assert glue_names(deep, ["us", "eu", "us"], "gslb-ns-") == [
        "gslb-ns-eu-a-b.example.com",
        "gslb-ns-us-a-b.example.com",
    ]


def test_own_endpoints_never_include_other_clusters_glue() -> None:
    held = [ns(EU, US), glue(EU, "10.0.0.1"), glue(US, "10.1.0.1"), glue("ns1.example.com", "127.0.0.1")]
    assert own_endpoints(ZONE, "eu", "gslb-ns-", held) == [ns(EU, US), glue(EU, "10.0.0.1")]


@pytest.mark.parametrize(
    ("held", "expected_ns"),
    [
        ([], ns(EU)),  # peers without glue stay out: no lame delegation
        ([glue(US, "10.1.0.1")], ns(EU, US)),  # active peer with glue joins
        ([ns(ZA), glue(ZA, "10.2.0.1")], ns(EU, ZA)),  # inactive peer already delegated is kept
        ([ns(ZA)], ns(EU, ZA)),  # kept even without its glue: it is that cluster's to remove
        ([ns(EU.upper() + ".")], ns(EU)),  # case and trailing dot do not duplicate own name
    ],
    ids=["first", "peer-with-glue", "keep-others", "keep-others-without-glue", "normalised"],
)
def test_merge_keeps_other_clusters_names(held: list[Endpoint], expected_ns: Endpoint) -> None:
    desired = delegation_endpoints(ZONE, "eu", ["us"], ["10.0.0.1"], "gslb-ns-", 30)
    assert merge_delegation(ZONE, "eu", "gslb-ns-", desired, held) == [expected_ns, glue(EU, "10.0.0.1")]


def test_changes_create_both_records_in_an_empty_zone() -> None:
    changes = delegation_changes(ZONE, "eu", ["us"], ["10.0.0.1"], "gslb-ns-", 30, [])
    assert changes.create == (ns(EU), glue(EU, "10.0.0.1"))
    assert not changes.update_new and not changes.delete


def test_changes_update_only_the_shared_ns_and_own_glue() -> None:
    held = [ns(US), glue(US, "10.1.0.1"), glue(EU, "10.0.0.7")]
    changes = delegation_changes(ZONE, "eu", ["us"], ["10.0.0.1"], "gslb-ns-", 30, held)
    assert changes.update_old == (ns(US), glue(EU, "10.0.0.7"))
    assert changes.update_new == (ns(EU, US), glue(EU, "10.0.0.1"))
    assert not changes.create and not changes.delete


def test_changes_are_empty_when_published() -> None:
    held = [ns(EU, US), glue(EU, "10.0.0.1"), glue(US, "10.1.0.1")]
    assert not delegation_changes(ZONE, "eu", ["us"], ["10.0.0.1"], "gslb-ns-", 30, held).has_changes


def test_changes_follow_ttl() -> None:
    held = [ns(EU, ttl=300), glue(EU, "10.0.0.1", ttl=300)]
    changes = delegation_changes(ZONE, "eu", [], ["10.0.0.1"], "gslb-ns-", 30, held)
    assert changes.update_new == (ns(EU), glue(EU, "10.0.0.1"))


def test_clusters_with_different_ns_ttls_settle() -> None:
    """The shared NS RRset's TTL is the first name's cluster's; each glue A keeps its own. Two clusters
    configured with 30 and 60 used to rewrite the RRset every round, for ever."""
    held = [ns(EU, US, ttl=30), glue(EU, "10.0.0.1", ttl=30), glue(US, "10.1.0.1", ttl=30)]
    us = delegation_changes(ZONE, "us", ["eu"], ["10.1.0.1"], "gslb-ns-", 60, held)
    assert us.update_new == (glue(US, "10.1.0.1", ttl=60),)  # its glue, not the shared NS
    held = [ns(EU, US, ttl=30), glue(EU, "10.0.0.1", ttl=30), glue(US, "10.1.0.1", ttl=60)]
    assert not delegation_changes(ZONE, "us", ["eu"], ["10.1.0.1"], "gslb-ns-", 60, held).has_changes
    assert not delegation_changes(ZONE, "eu", ["us"], ["10.0.0.1"], "gslb-ns-", 30, held).has_changes
    # the deciding cluster changes its TTL: the RRset follows
    eu = delegation_changes(ZONE, "eu", ["us"], ["10.0.0.1"], "gslb-ns-", 120, held)
    assert eu.update_new == (ns(EU, US, ttl=120), glue(EU, "10.0.0.1", ttl=120))


@pytest.mark.parametrize(
    ("held", "update", "delete"),
    [
        ([ns(EU, US), glue(EU, "10.0.0.1"), glue(US, "10.1.0.1")], [ns(US)], [glue(EU, "10.0.0.1")]),
        ([ns(EU), glue(EU, "10.0.0.1")], [], [ns(EU), glue(EU, "10.0.0.1")]),  # last one out
        ([ns(US), glue(US, "10.1.0.1")], [], []),  # never joined: nothing to do
        ([glue(EU, "10.0.0.1")], [], [glue(EU, "10.0.0.1")]),  # stray own glue is cleaned up
    ],
    ids=["not-last", "last", "absent", "glue-only"],
)
def test_withdrawal(held: list[Endpoint], update: list[Endpoint], delete: list[Endpoint]) -> None:
    changes = withdrawal_changes(ZONE, "eu", "gslb-ns-", held)
    assert list(changes.update_new) == update
    assert list(changes.delete) == delete
    assert not changes.create
