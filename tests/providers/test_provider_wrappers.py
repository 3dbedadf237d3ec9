"""Wrappers (traced, retrying, cached) and the settings factory, end to end where a server exists."""

from __future__ import annotations

import asyncio
import logging

import dns.asyncquery
import dns.message
import pytest
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import CollectorRegistry

from app.domain.delegation import delegation_changes
from app.domain.endpoint import Changes, Endpoint
from app.providers.base import ProviderError, TransientProviderError
from app.providers.edge import NoEdgeProvider, build_edge_provider
from app.providers.infoblox import InfobloxProvider
from app.providers.inmemory import InMemoryProvider
from app.providers.rfc2136 import Rfc2136Provider
from app.providers.wrappers import Cached, Retrying, Traced
from app.settings import Settings, load_settings
from tests.providers.conftest import Spans, rfc2136_for
from tests.support.bind9 import Bind9
from tests.support.wapi import FakeWapi

GLUE = Endpoint("gslb-ns-eu-cloud.example.com", ("10.0.0.1",), "A", 30)


async def delegate_through(settings: Settings, kind: type) -> Retrying:
    """Build from settings, check the stack is Retrying(Traced(kind)), publish eu's delegation."""
    provider = build_edge_provider(settings, registry=CollectorRegistry())
    assert isinstance(provider, Retrying) and isinstance(provider.inner, Traced)
    assert isinstance(provider.inner.inner, kind)
    [zone] = settings.zones
    prefix, ttl = settings.gluea_prefix, settings.ns_record_ttl
    await provider.apply(zone.parent_zone, delegation_changes(zone, "eu", [], ["10.0.0.1"], prefix, ttl, []))
    return provider


async def test_rfc2136_spans_carry_dns_attributes(bind9: Bind9, spans: Spans) -> None:
    traced = Traced(rfc2136_for(bind9), spans.provider)
    await traced.apply("example.com", Changes(create=(GLUE,)))
    held = await traced.records("example.com")
    [apply], [records] = spans.named("provider.apply"), spans.named("provider.records")
    assert apply.kind == SpanKind.CLIENT and apply.status.status_code == StatusCode.UNSET
    assert apply.attributes is not None and records.attributes is not None
    assert dict(apply.attributes) == {
        "provider.name": "rfc2136",
        "provider.zone": "example.com",
        "provider.attempt": 1,
        "dns.question.name": "example.com",
        "server.address": bind9.host,
        "server.port": bind9.port,
        "network.transport": "tcp",
        "provider.changes.create": 1,
        "provider.changes.update": 0,
        "provider.changes.delete": 0,
        "dns.response_code": "NOERROR",
    }
    assert records.attributes["provider.records"] == len(held) == 2


async def test_failed_call_is_an_error_span(bind9: Bind9, spans: Spans) -> None:
    traced = Traced(rfc2136_for(bind9), spans.provider)
    with pytest.raises(ProviderError):
        await traced.apply("example.org", Changes(create=(Endpoint("a.example.org", ("10.0.0.1",)),)))
    [span] = spans.named("provider.apply")
    assert span.status.status_code == StatusCode.ERROR and "NOTAUTH" in (span.status.description or "")
    assert span.attributes is not None
    assert span.attributes["error.type"] == "ProviderError"
    assert span.attributes["provider.error.transient"] is False
    assert span.attributes["dns.response_code"] == "NOTAUTH"
    assert [e.name for e in span.events] == ["exception"]


async def test_server_down_is_retried_with_growing_pauses(bind9: Bind9) -> None:
    pauses: list[float] = []

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)

    provider = Retrying(
        rfc2136_for(bind9), attempts=5, base_delay=1.0, max_delay=4.0, sleep=sleep, jitter=lambda: 0.5
    )
    await bind9.stop()
    with pytest.raises(TransientProviderError):
        await provider.records("example.com")
    assert provider.calls == 5
    assert pauses == [0.75, 1.5, 3.0, 3.0]  # 1, 2, 4, 4 (capped) with half of it jittered


@pytest.mark.parametrize("draw", [0.0, 0.999])
def test_backoff_stays_within_bounds(draw: float) -> None:
    provider = Retrying(InMemoryProvider(), base_delay=0.5, max_delay=10.0, jitter=lambda: draw)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (6, 10.0), (30, 10.0)]:
        assert ceiling / 2 <= provider.delay(attempt) <= ceiling


def test_retrying_needs_an_attempt() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Retrying(InMemoryProvider(), attempts=0)


async def test_retry_observer_sees_every_retried_attempt(bind9: Bind9) -> None:
    seen: list[tuple[str, str, bool, int]] = []

    async def sleep(seconds: float) -> None:
        return None

    provider = Retrying(
        rfc2136_for(bind9),
        attempts=3,
        sleep=sleep,
        observer=lambda name, op, exc, attempt: seen.append((name, op, exc.transient, attempt)),
    )
    await bind9.stop()
    with pytest.raises(TransientProviderError):
        await provider.apply("example.com", Changes(create=(GLUE,)))
    assert seen == [("rfc2136", "apply", True, 1), ("rfc2136", "apply", True, 2)]  # the third is not retried

    seen.clear()  # a fatal error (a key the server does not know) is not retried, so not seen
    await bind9.start()
    refused = Retrying(
        rfc2136_for(bind9, keyname="nobody"), attempts=3, sleep=sleep, observer=lambda *a: seen.append(a)
    )
    with pytest.raises(ProviderError) as fatal:
        await refused.apply("example.com", Changes(create=(GLUE,)))
    assert not fatal.value.transient and seen == []


async def test_cache_answers_until_ttl_and_forgets_on_apply() -> None:
    now = [0.0]
    inner = InMemoryProvider()
    cached = Cached(inner, ttl=10, clock=lambda: now[0])
    assert await cached.records("example.com") == []
    await inner.apply("example.com", Changes(create=(GLUE,)))  # behind the cache's back
    assert await cached.records("example.com") == []
    now[0] = 10.0
    assert await cached.records("example.com") == [GLUE]
    await cached.apply("example.com", Changes(delete=(GLUE,)))
    assert await cached.records("example.com") == []
    assert (cached.hits, cached.misses) == (1, 3)


async def test_no_edge_provider_holds_nothing_and_says_what_it_would_write(
    caplog: pytest.LogCaptureFixture,
) -> None:
    provider = build_edge_provider(load_settings(edge_dns_type="none"))
    assert isinstance(provider, NoEdgeProvider)
    changes = Changes(create=(GLUE,))
    with caplog.at_level(logging.INFO, logger="pygslb.providers.edge"):
        await provider.apply("example.com", changes)
        await provider.apply("example.com", changes)
    assert await provider.records("example.com") == []
    infos = [r for r in caplog.records if r.levelno == logging.INFO]
    assert len(infos) == 1 and "gslb-ns-eu-cloud.example.com" in infos[0].getMessage()


async def test_rfc2136_from_settings_delegates_in_bind(bind9: Bind9) -> None:
    assert bind9.key is not None
    settings = load_settings(
        edge_dns_type="rfc2136",
        rfc2136_host=f"{bind9.host}:{bind9.port}",
        rfc2136_tsig_keyname=bind9.key.name,
        rfc2136_tsig_secret=bind9.key.secret,
        dns_zones="example.com:cloud.example.com:30",
    )
    await delegate_through(settings, Rfc2136Provider)
    query = dns.message.make_query("gslb-ns-eu-cloud.example.com", "A")
    answer = await dns.asyncquery.udp(query, bind9.host, timeout=2, port=bind9.port)
    assert [r.address for r in answer.answer[0]] == ["10.0.0.1"]


async def test_infoblox_from_settings_delegates_in_wapi(wapi: FakeWapi) -> None:
    settings = load_settings(
        infoblox_grid_host="127.0.0.1",
        infoblox_wapi_port=wapi.port,
        infoblox_scheme="http",
        infoblox_wapi_username=wapi.username,
        infoblox_wapi_password=wapi.password,
        infoblox_wapi_version="2.3.1",
        dns_zones="example.com:cloud.example.com:30",
    )
    provider = await delegate_through(settings, InfobloxProvider)
    assert wapi.zone("cloud.example.com") is not None
    assert wapi.requests[-1].path == "/wapi/v2.3.1/zone_delegated"
    await provider.aclose()


async def test_a_call_cancelled_midway_says_so_on_its_span(spans: Spans) -> None:
    """Shutdown cancels an update waiting on a server that does not answer: the span ends without an
    error (nothing failed) but marked `pygslb.cancelled`, not as a call that succeeded."""
    silent = await asyncio.start_server(lambda reader, writer: None, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    try:
        traced = Traced(
            Rfc2136Provider("127.0.0.1", port, keyname="k", secret="c2VjcmV0", timeout=30.0), spans.provider
        )
        call = asyncio.create_task(traced.apply("example.com", Changes(create=(GLUE,))))
        await asyncio.sleep(0.2)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
    finally:
        silent.close()
    [span] = spans.named("provider.apply")
    assert span.status.status_code == StatusCode.UNSET
    assert span.attributes is not None and span.attributes["pygslb.cancelled"] is True
