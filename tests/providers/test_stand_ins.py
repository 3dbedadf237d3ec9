"""The test servers themselves: BIND9 with several zones, and the fake WAPI refusing what the grid refuses.

The provider tests are only as good as these: a fake that accepted anything would let a broken
client pass, so its refusals are checked here with plain HTTP.
"""

from __future__ import annotations

import socket

import dns.asyncquery
import dns.message
import dns.rcode
import httpx
import pytest

from tests.support.bind9 import Bind9, require_named, zone_text
from tests.support.wapi import FakeWapi


async def test_bind9_serves_several_zones_and_frees_its_port() -> None:
    require_named()
    zones = {
        "example.com": zone_text("example.com", records="www IN A 192.0.2.1"),
        "example.org": zone_text("example.org"),
    }
    server = Bind9(zones)
    async with server:
        www = dns.message.make_query("www.example.com", "A")
        answer = await dns.asyncquery.udp(www, server.host, timeout=2, port=server.port)
        assert [r.address for r in answer.answer[0]] == ["192.0.2.1"]
        soa = dns.message.make_query("example.org", "SOA")
        assert (await dns.asyncquery.udp(soa, server.host, timeout=2, port=server.port)).answer
    assert not server.running
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind((server.host, server.port))


async def test_bind9_reports_a_broken_zone_with_its_log() -> None:
    require_named()
    with pytest.raises(RuntimeError, match="could not load") as caught:
        async with Bind9({"example.com": "this is not a zone file"}, start_timeout=5):
            pass
    assert "example.com" in str(caught.value)


NAMED = {"name": "n.example.com", "address": "10.0.0.1"}
BAD = {"name": "n.example.com", "address": "bad"}


def _client(wapi: FakeWapi, password: str | None = None) -> httpx.AsyncClient:
    auth = httpx.BasicAuth(wapi.username, password or wapi.password)
    return httpx.AsyncClient(base_url=f"{wapi.url}/wapi/v2.3.1", auth=auth, timeout=2)


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "text"),
    [
        ("POST", "zone_delegated", {"fqdn": "a.example.com", "nonsense": 1}, 400, "Unknown argument/field"),
        ("POST", "zone_delegated", {"fqdn": "a.example.com"}, 400, "delegate_to or ns_group"),
        (
            "POST",
            "zone_delegated",
            {"fqdn": "a.example.org", "delegate_to": [{"name": "n", "address": "10.0.0.1"}]},
            400,
            "parent zone",
        ),
        (
            "POST",
            "zone_delegated",
            {"fqdn": "a.example.com", "delegate_to": [{"name": "n", "address": "bad"}]},
            400,
            "Invalid value for address",
        ),
        ("PUT", "zone_delegated/ZG5z:nothing.example.com/default", {"delegate_to": []}, 404, "not found"),
        (
            "GET",
            "zone_delegated?fqdn=a.example.com&_return_fields=bogus",
            None,
            400,
            "Unknown argument/field",
        ),
        ("GET", "record_a", None, 400, "Unknown object type"),
    ],
)
async def test_fake_wapi_refuses_like_the_grid(
    wapi: FakeWapi, method: str, path: str, body: object, status: int, text: str
) -> None:
    async with _client(wapi) as client:
        response = await client.request(method, path, json=body)
    assert response.status_code == status
    error = response.json()
    assert set(error) == {"Error", "code", "text"} and text in error["text"]


async def test_fake_wapi_answers_refs_and_lists(wapi: FakeWapi) -> None:
    entry = {"name": "gslb-ns-eu-cloud.example.com", "address": "10.0.0.1"}
    async with _client(wapi) as client:
        created = await client.post(
            "zone_delegated", json={"fqdn": "cloud.example.com", "delegate_to": [entry]}
        )
        assert created.status_code == 201
        ref = created.json()
        assert ref.startswith("zone_delegated/") and ref.endswith(":cloud.example.com/default")
        duplicate = await client.post(
            "zone_delegated", json={"fqdn": "cloud.example.com", "delegate_to": [entry]}
        )
        assert duplicate.status_code == 400 and duplicate.json()["code"] == "Client.Ibap.Data.Conflict"
        found = await client.get("zone_delegated", params={"fqdn": "CLOUD.example.com"})
        assert found.json() == [
            {"_ref": ref, "delegate_to": [entry], "fqdn": "cloud.example.com", "view": "default"}
        ]
        assert (await client.put(ref, json={"comment": "x"})).json() == ref
        assert (await client.delete(ref)).json() == ref
        assert (await client.get("zone_delegated")).json() == []
    async with _client(wapi, password="wrong") as client:
        assert (await client.get("zone_delegated")).status_code == 401
