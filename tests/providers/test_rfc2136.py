"""RFC2136 against a real BIND9: what resolvers see, and how each kind of failure is reported."""

from __future__ import annotations

import asyncio

import dns.asyncquery
import dns.message
import dns.rdatatype
import pytest

from app.domain.delegation import delegation_changes
from app.domain.endpoint import Changes, Endpoint
from app.domain.zones import ZoneConfig
from app.providers.base import ChangeConflictError, ProviderError, TransientProviderError
from app.providers.rfc2136 import Rfc2136Provider
from tests.providers.conftest import rfc2136_for
from tests.support.bind9 import Bind9, generate_key, require_named

ZONE = ZoneConfig(parent_zone="example.com", load_balanced_zone="cloud.example.com", neg_ttl=30)
EU = "gslb-ns-eu-cloud.example.com"
GLUE = Endpoint(EU, ("10.0.0.1",), "A", 30)
WRONG_SECRET = "c2VjcmV0LXRoYXQtYmluZC1kb2VzLW5vdC1rbm93LTEyMzQ="


async def ask(server: Bind9, name: str, rdtype: str) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype)
    return await dns.asyncquery.udp(query, server.host, timeout=2, port=server.port)


async def test_delegation_is_what_resolvers_get(bind9: Bind9) -> None:
    provider = rfc2136_for(bind9)
    changes = delegation_changes(ZONE, "eu", [], ["10.0.0.1", "10.0.0.2"], "gslb-ns-", 30, [])
    await provider.apply("example.com", changes)

    referral = await ask(bind9, "app.cloud.example.com", "A")
    assert not referral.answer
    [ns] = [r for r in referral.authority if r.rdtype == dns.rdatatype.NS]
    assert ns.name.to_text() == "cloud.example.com."
    assert ns.ttl == 30
    assert [r.target.to_text() for r in ns] == [EU + "."]

    glue = await ask(bind9, EU, "A")
    assert sorted(r.address for r in glue.answer[0]) == ["10.0.0.1", "10.0.0.2"]


async def test_records_leave_out_the_apex(bind9: Bind9) -> None:
    provider = rfc2136_for(bind9)
    await provider.apply("example.com", Changes(create=(GLUE,)))
    assert {e.key for e in await provider.records("example.com")} == {(EU, "A"), ("ns1.example.com", "A")}


async def test_a_change_lost_to_a_concurrent_writer_is_a_conflict(bind9: Bind9) -> None:
    """Two clusters planned from the same read: the second update fails instead of overwriting."""
    first, second = rfc2136_for(bind9), rfc2136_for(bind9)
    ns = Endpoint("cloud.example.com", (EU,), "NS", 30)
    await first.apply("example.com", Changes(create=(ns, GLUE)))
    both = Endpoint("cloud.example.com", (EU, "gslb-ns-us-cloud.example.com"), "NS", 30)
    other = Endpoint("cloud.example.com", (EU, "gslb-ns-za-cloud.example.com"), "NS", 30)
    await first.apply("example.com", Changes(update_old=(ns,), update_new=(both,)))
    with pytest.raises(ChangeConflictError, match="NXRRSET"):
        await second.apply("example.com", Changes(update_old=(ns,), update_new=(other,)))
    held = {e.key: e for e in await second.records("example.com")}
    assert held[("cloud.example.com", "NS")].targets == both.targets


async def test_wrong_tsig_secret_is_fatal_and_names_the_key(bind9: Bind9) -> None:
    provider = rfc2136_for(bind9, secret=WRONG_SECRET)
    for call in (provider.records("example.com"), provider.apply("example.com", Changes(create=(GLUE,)))):
        with pytest.raises(ProviderError) as caught:
            await call
        assert not caught.value.transient
        assert repr(bind9.key.name) in str(caught.value)  # type: ignore[union-attr]
        assert WRONG_SECRET not in str(caught.value)
    assert await rfc2136_for(bind9).records("example.com") == [
        Endpoint("ns1.example.com", ("127.0.0.1",), "A", 300)
    ]


async def test_unknown_key_name_is_fatal(bind9: Bind9) -> None:
    provider = rfc2136_for(bind9, keyname="nobody")
    with pytest.raises(ProviderError, match="'nobody'") as caught:
        await provider.apply("example.com", Changes(create=(GLUE,)))
    assert not caught.value.transient


async def test_unsigned_update_is_refused(bind9: Bind9) -> None:
    provider = Rfc2136Provider(bind9.host, bind9.port, timeout=2)
    with pytest.raises(ProviderError, match="REFUSED") as caught:
        await provider.apply("example.com", Changes(create=(GLUE,)))
    assert not caught.value.transient


async def test_zone_not_served_there_is_fatal(bind9: Bind9) -> None:
    provider = rfc2136_for(bind9)
    with pytest.raises(ProviderError, match="NOTAUTH") as caught:
        await provider.apply("example.org", Changes(create=(Endpoint("x.example.org", ("10.0.0.1",)),)))
    assert not caught.value.transient


async def test_server_down_is_transient(bind9: Bind9) -> None:
    provider = rfc2136_for(bind9)
    await bind9.stop()
    with pytest.raises(TransientProviderError, match="cannot reach"):
        await provider.records("example.com")
    with pytest.raises(TransientProviderError):
        await provider.apply("example.com", Changes(create=(GLUE,)))


async def test_invalid_target_is_refused_before_sending(bind9: Bind9) -> None:
    provider = rfc2136_for(bind9)
    with pytest.raises(ProviderError, match="invalid record"):
        await provider.apply("example.com", Changes(create=(Endpoint(EU, ("10.0.0.300",), "A", 30),)))


@pytest.mark.parametrize(
    ("secret", "algorithm", "message"),
    [
        ("not base64!", "hmac-sha256", "not valid base64"),
        (WRONG_SECRET, "hmac-sha999", "unsupported algorithm"),
    ],
)
def test_bad_key_settings_are_refused_at_start(secret: str, algorithm: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        Rfc2136Provider("127.0.0.1", 53, "edge-key", secret, algorithm)
    assert "edge-key" in str(caught.value) and secret not in str(caught.value)


@pytest.mark.parametrize("algorithm", ["hmac-md5", "HMAC-MD5", "hmac-sha512"])
async def test_a_key_named_as_tsig_keygen_names_it_signs_updates(algorithm: str) -> None:
    """BIND's `tsig-keygen -a hmac-md5` (and ExternalDNS's rfc2136 settings) call MD5 `hmac-md5`."""
    require_named()
    key = await generate_key("edge-key", algorithm.lower())
    async with Bind9(["example.com"], key=key) as server:
        provider = Rfc2136Provider(server.host, server.port, key.name, key.secret, algorithm, timeout=2.0)
        await provider.apply("example.com", Changes(create=(GLUE,)))
        glue = await ask(server, EU, "A")
        assert [r.address for r in glue.answer[0]] == ["10.0.0.1"]


async def test_a_slow_resolver_for_the_servers_name_costs_the_timeout_not_more(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """RFC2136_HOST may be a name; its lookup had no deadline, whatever RFC2136's timeout said."""
    loop = asyncio.get_running_loop()

    async def slow_resolver(*args: object, **kwargs: object) -> list[object]:
        await asyncio.sleep(30)
        return []

    monkeypatch.setattr(loop, "getaddrinfo", slow_resolver)
    provider = Rfc2136Provider("bind.example.net", 53, timeout=0.3)
    for attempt in (
        lambda: provider.records("example.com"),
        lambda: provider.apply("example.com", Changes(create=(GLUE,))),
    ):
        started = loop.time()
        with pytest.raises(TransientProviderError, match="bind.example.net: no answer within 0.3s"):
            await attempt()
        assert loop.time() - started < 1.5
