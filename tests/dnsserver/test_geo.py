"""Geo locators: CIDR table with longest prefix, a real MaxMind-format database, and the chain."""

from __future__ import annotations

from pathlib import Path

import pytest
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from app.dnsserver.geo import ChainLocator, CidrLocator, MaxMindLocator


@pytest.mark.parametrize(
    "ip, expected",
    [
        pytest.param("10.1.2.3", "eu", id="short-prefix"),
        pytest.param("10.20.1.1", "us", id="longer-prefix-wins"),
        pytest.param("10.20.30.4", "us-west", id="longest-prefix-wins"),
        pytest.param("192.168.1.1", None, id="no-match"),
        pytest.param("2001:db8::1", "v6", id="ipv6"),
        pytest.param("not-an-ip", None, id="garbage"),
    ],
)
def test_cidr_locator_longest_prefix(ip: str, expected: str | None) -> None:
    locator = CidrLocator.from_setting(
        "10.0.0.0/8=eu, 10.20.0.0/16=us,10.20.30.0/24=us-west,2001:db8::/32=v6,"
    )
    assert locator.locate(ip) == expected


@pytest.mark.parametrize(
    "setting, message",
    [
        pytest.param("10.0.0.0/8", "CIDR=tag", id="no-tag"),
        pytest.param("10.0.0.300/8=eu", "not a network", id="bad-network"),
        pytest.param("10.0.0.0/33=eu", "not a network", id="bad-prefix"),
        pytest.param("10.0.1.5/24=eu", "host bits set, did you mean 10.0.1.0/24", id="host-bits"),
        pytest.param("10.0.0.0/8=", "letters, digits and '-' only", id="empty-tag"),
        pytest.param("10.0.0.0/8=e_u", "letters, digits and '-' only", id="tag-no-cluster-can-have"),
    ],
)
def test_cidr_setting_errors(setting: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CidrLocator.from_setting(setting)


@pytest.fixture
def mmdb(tmp_path: Path) -> Path:
    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type="k8gb-test")
    writer.insert_network(IPSet(["10.10.0.0/16"]), {"datacenter": "eu", "continent": {"code": "EU"}})
    writer.insert_network(IPSet(["10.20.0.0/16"]), {"datacenter": "us", "continent": {"code": "NA"}})
    path = tmp_path / "geo.mmdb"
    writer.to_db_file(str(path))
    return path


@pytest.mark.parametrize(
    "field, ip, expected",
    [
        pytest.param("datacenter", "10.10.3.4", "eu", id="eu"),
        pytest.param("datacenter", "10.20.3.4", "us", id="us"),
        pytest.param("datacenter", "192.0.2.1", None, id="unknown"),
        pytest.param("continent.code", "10.20.3.4", "NA", id="dotted-field"),
        pytest.param("missing", "10.20.3.4", None, id="missing-field"),
        pytest.param("datacenter", "bogus", None, id="garbage"),
    ],
)
async def test_maxmind_locator(mmdb: Path, field: str, ip: str, expected: str | None) -> None:
    locator = await MaxMindLocator.load(mmdb, field)
    try:
        assert locator.locate(ip) == expected
    finally:
        locator.close()


async def test_chain_takes_first_answer(mmdb: Path) -> None:
    maxmind = await MaxMindLocator.load(mmdb)
    chain = ChainLocator([CidrLocator.from_setting("10.10.9.0/24=override"), maxmind])
    assert [chain.locate(ip) for ip in ("10.10.9.1", "10.10.1.1", "192.0.2.1")] == ["override", "eu", None]
    maxmind.close()
