"""Infoblox against the fake WAPI: k8gb's zone_delegated semantics, failures, metrics and traceparent."""

from __future__ import annotations

import pytest
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import CollectorRegistry

from app.domain.delegation import delegation_changes, withdrawal_changes
from app.domain.endpoint import Changes, Endpoint
from app.domain.zones import ZoneConfig
from app.providers.base import ProviderError, TransientProviderError
from app.providers.infoblox import InfobloxProvider
from app.providers.wrappers import Retrying, Traced
from tests.providers.conftest import Spans, infoblox_for
from tests.support.wapi import FakeWapi

ZONE = ZoneConfig(parent_zone="example.com", load_balanced_zone="cloud.example.com", neg_ttl=30)
EU = "gslb-ns-eu-cloud.example.com"
US = "gslb-ns-us-cloud.example.com"
PREFIX = "/wapi/v2.3.1/zone_delegated"


async def publish(provider: InfobloxProvider, tag: str, ips: list[str]) -> None:
    changes = delegation_changes(ZONE, tag, [], ips, "gslb-ns-", 30, await provider.records("example.com"))
    await provider.apply("example.com", changes)


async def withdraw(provider: InfobloxProvider, tag: str) -> None:
    changes = withdrawal_changes(ZONE, tag, "gslb-ns-", await provider.records("example.com"))
    await provider.apply("example.com", changes)


async def test_first_cluster_creates_the_delegated_zone(wapi: FakeWapi, infoblox: InfobloxProvider) -> None:
    await publish(infoblox, "eu", ["10.0.0.9", "10.0.0.10"])
    read = wapi.requests[0]
    [create] = wapi.writes()
    assert (read.method, read.path) == ("GET", PREFIX)
    assert read.query["fqdn"] == "cloud.example.com" and read.query["view"] == "default"
    assert (create.method, create.path) == ("POST", PREFIX)
    assert create.body == {
        "fqdn": "cloud.example.com",
        "view": "default",
        "delegate_to": [{"name": EU, "address": "10.0.0.10"}, {"name": EU, "address": "10.0.0.9"}],
        "comment": "created by k8gb",
        "ttl": 30,
        "use_ttl": True,
        "zone_format": "FORWARD",
    }


async def test_update_keeps_other_clusters_entries(wapi: FakeWapi, infoblox: InfobloxProvider) -> None:
    ref = wapi.seed(
        "cloud.example.com",
        [{"name": US, "address": "10.1.0.1"}, {"name": EU, "address": "10.0.0.7"}],
        comment="created by k8gb",
        ttl=30,
        use_ttl=True,
    )
    await publish(infoblox, "eu", ["10.0.0.1", "10.2.0.1"])
    [put] = wapi.writes()
    assert (put.method, put.path) == ("PUT", f"/wapi/v2.3.1/{ref}")
    expected = [
        {"name": EU, "address": "10.0.0.1"},
        {"name": US, "address": "10.1.0.1"},
        {"name": EU, "address": "10.2.0.1"},
    ]
    assert put.body == {"delegate_to": expected, "comment": "updated by k8gb", "ttl": 30, "use_ttl": True}
    assert wapi.zone("cloud.example.com")["delegate_to"] == expected  # type: ignore[index]

    await withdraw(infoblox, "eu")
    assert wapi.zone("cloud.example.com")["delegate_to"] == [{"name": US, "address": "10.1.0.1"}]  # type: ignore[index]


async def test_last_cluster_out_deletes_the_zone(wapi: FakeWapi, infoblox: InfobloxProvider) -> None:
    ref = wapi.seed("cloud.example.com", [{"name": EU, "address": "10.0.0.1"}], ttl=30, use_ttl=True)
    await withdraw(infoblox, "eu")
    assert [(r.method, r.path) for r in wapi.writes()] == [("DELETE", f"/wapi/v2.3.1/{ref}")]
    assert wapi.zone("cloud.example.com") is None


async def test_nothing_is_written_when_nothing_differs(wapi: FakeWapi, infoblox: InfobloxProvider) -> None:
    wapi.seed("cloud.example.com", [{"name": EU, "address": "10.0.0.1"}], ttl=30, use_ttl=True)
    glue = Endpoint(EU, ("10.0.0.1",), "A", 30)
    await infoblox.apply("example.com", Changes(update_old=(glue,), update_new=(glue,)))
    assert not wapi.writes()


async def test_zone_without_own_ttl_reports_the_configured_one(
    wapi: FakeWapi, infoblox: InfobloxProvider
) -> None:
    wapi.seed("cloud.example.com", [{"name": US, "address": "10.1.0.1"}], ttl=3600, use_ttl=False)
    assert await infoblox.records("example.com") == [
        Endpoint("cloud.example.com", (US,), "NS", 30),
        Endpoint(US, ("10.1.0.1",), "A", 30),
    ]


async def test_glue_without_a_zone_naming_it_is_refused(wapi: FakeWapi, infoblox: InfobloxProvider) -> None:
    with pytest.raises(ProviderError, match="no delegated zone"):
        await infoblox.apply("example.com", Changes(create=(Endpoint(EU, ("10.0.0.1",), "A", 30),)))
    assert not wapi.writes()


async def test_server_error_is_transient(wapi: FakeWapi, infoblox: InfobloxProvider) -> None:
    wapi.fail_next(1, 502)
    with pytest.raises(TransientProviderError, match="502"):
        await infoblox.records("example.com")


async def test_hanging_server_is_a_transient_timeout(wapi: FakeWapi) -> None:
    provider = infoblox_for(wapi, timeout=0.3)
    wapi.fail_next(1, 0)
    with pytest.raises(TransientProviderError, match="did not answer within 0.3s"):
        await provider.records("example.com")
    await provider.aclose()


async def test_unreachable_grid_is_transient(wapi: FakeWapi) -> None:
    provider = infoblox_for(wapi)
    await wapi.stop()
    with pytest.raises(TransientProviderError, match="cannot reach"):
        await provider.records("example.com")
    await provider.aclose()


async def test_client_error_is_fatal_with_wapis_text(wapi: FakeWapi) -> None:
    provider = infoblox_for(wapi, view="internal")
    with pytest.raises(ProviderError, match="View 'internal' not found") as caught:
        await publish(provider, "eu", ["10.0.0.1"])
    assert not caught.value.transient
    await provider.aclose()


async def test_bad_credentials_are_fatal_and_keep_the_password_out(wapi: FakeWapi) -> None:
    provider = InfobloxProvider(
        wapi.url, "admin", "hunter2", "2.3.1", zones=["cloud.example.com"], registry=CollectorRegistry()
    )
    with pytest.raises(ProviderError, match="credentials of user 'admin'") as caught:
        await provider.records("example.com")
    assert not caught.value.transient and "hunter2" not in str(caught.value)
    await provider.aclose()


async def test_request_durations_use_k8gbs_histogram(wapi: FakeWapi) -> None:
    registry = CollectorRegistry()
    provider = infoblox_for(wapi, registry=registry)
    wapi.fail_next(1, 500)
    with pytest.raises(TransientProviderError):
        await provider.records("example.com")
    await publish(provider, "eu", ["10.0.0.1"])

    def count(request: str, success: str) -> float | None:
        labels = {"request": request, "success": success}
        return registry.get_sample_value("k8gb_infoblox_request_duration_count", labels)

    assert (count("ZoneRead", "false"), count("ZoneRead", "true"), count("ZoneCreate", "true")) == (1, 2, 1)
    bucket = {"request": "ZoneCreate", "success": "true", "le": "51.2"}
    assert registry.get_sample_value("k8gb_infoblox_request_duration_bucket", bucket) == 1
    await provider.aclose()


async def test_wapi_receives_the_provider_span_as_parent(
    wapi: FakeWapi, infoblox: InfobloxProvider, spans: Spans
) -> None:
    traced = Traced(infoblox, spans.provider)
    with spans.provider.get_tracer("test").start_as_current_span("reconcile") as cause:
        changes = delegation_changes(ZONE, "eu", [], ["10.0.0.1"], "gslb-ns-", 30, [])
        await traced.apply("example.com", changes)
    [apply] = spans.named("provider.apply")
    assert apply.kind == SpanKind.CLIENT
    assert apply.parent is not None and apply.parent.span_id == cause.get_span_context().span_id
    assert apply.attributes is not None and apply.attributes["provider.changes.create"] == 2
    assert [r.method for r in wapi.requests] == ["GET", "POST"]
    for request in wapi.requests:
        version, trace_id, parent_id, flags = request.headers["traceparent"].split("-")
        assert trace_id == f"{apply.context.trace_id:032x}"
        assert parent_id == f"{apply.context.span_id:016x}"
        assert int(flags, 16) & 1  # sampled
    # One call, two WAPI requests: each is an event on the span, with its method, path and status.
    requests = [dict(e.attributes or {}) for e in apply.events if e.name == "wapi.request"]
    assert [(r["http.request.method"], r["http.response.status_code"]) for r in requests] == [
        ("GET", 200),
        ("POST", 201),
    ]
    assert [r["pygslb.wapi.operation"] for r in requests] == ["ZoneRead", "ZoneCreate"]
    assert all(str(r["url.path"]).endswith("zone_delegated") for r in requests)


async def test_retries_with_backoff_then_succeeds(
    wapi: FakeWapi, infoblox: InfobloxProvider, spans: Spans
) -> None:
    pauses: list[float] = []

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)

    provider = Retrying(
        Traced(infoblox, spans.provider), attempts=4, base_delay=0.5, sleep=sleep, jitter=lambda: 1.0
    )
    wapi.fail_next(2, 503)
    await provider.apply("example.com", delegation_changes(ZONE, "eu", [], ["10.0.0.1"], "gslb-ns-", 30, []))
    assert provider.calls == 3 and pauses == [0.5, 1.0]
    assert [r.method for r in wapi.writes()] == ["POST"]
    attempts = spans.named("provider.apply")
    assert [s.attributes["provider.attempt"] for s in attempts if s.attributes] == [1, 2, 3]
    assert [s.status.status_code for s in attempts] == [StatusCode.ERROR, StatusCode.ERROR, StatusCode.UNSET]
    # The failed request (503), then the exception it raised.
    assert [e.name for e in attempts[0].events] == ["wapi.request", "exception"]
    assert (attempts[0].events[0].attributes or {})["http.response.status_code"] == 503


async def test_gives_up_after_the_attempts_and_loses_nothing(
    wapi: FakeWapi, infoblox: InfobloxProvider
) -> None:
    pauses: list[float] = []

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)

    provider = Retrying(infoblox, attempts=3, base_delay=1.0, sleep=sleep)
    changes = delegation_changes(ZONE, "eu", [], ["10.0.0.1"], "gslb-ns-", 30, [])
    wapi.fail_next(10, 500)
    with pytest.raises(TransientProviderError):
        await provider.apply("example.com", changes)
    assert provider.calls == 3 and len(pauses) == 2 and provider.last_error is not None
    assert wapi.zone("cloud.example.com") is None

    wapi.faults.clear()
    await provider.apply("example.com", changes)  # the next reconcile brings the same desired state
    assert wapi.zone("cloud.example.com") is not None and provider.last_error is None


async def test_fatal_error_is_not_retried(wapi: FakeWapi, infoblox: InfobloxProvider) -> None:
    async def sleep(seconds: float) -> None:
        raise AssertionError("a fatal error must not be retried")

    provider = Retrying(infoblox, attempts=5, sleep=sleep)
    wapi.fail_next(1, 400, "Invalid value for delegate_to")
    with pytest.raises(ProviderError, match="Invalid value for delegate_to"):
        await provider.records("example.com")
    assert provider.calls == 1


async def test_an_undecodable_answer_is_a_provider_error(wapi: FakeWapi, infoblox: InfobloxProvider) -> None:
    """A proxy labelling a plain body gzip: httpx's DecodingError is neither a timeout nor a transport
    error, and escaped as itself (and ended the delegation loop)."""
    wapi.fail_next(1, 200)
    with pytest.raises(ProviderError, match="ZoneRead: Infoblox .* cannot be read: DecodingError") as caught:
        await infoblox.records("example.com")
    assert not caught.value.transient


@pytest.mark.parametrize(
    ("delegate_to", "expected"),
    [
        ([{"name": EU}], "delegate_to entry {'name': '" + EU + "'} lacks a name or address"),
        ("gslb-ns-eu", "delegate_to is str, not a list"),
        (
            [["gslb-ns-eu", "10.0.0.1"]],
            "delegate_to entry ['gslb-ns-eu', '10.0.0.1'] lacks a name or address",
        ),
    ],
)
async def test_a_malformed_zone_delegated_is_a_provider_error_naming_it(
    wapi: FakeWapi, infoblox: InfobloxProvider, delegate_to: object, expected: str
) -> None:
    wapi.seed("cloud.example.com", delegate_to)  # type: ignore[arg-type]
    for attempt in (lambda: infoblox.records("example.com"), lambda: publish(infoblox, "eu", ["10.0.0.1"])):
        with pytest.raises(ProviderError) as caught:
            await attempt()
        assert f"ZoneRead cloud.example.com: WAPI answered a zone_delegated whose {expected}" in str(
            caught.value
        )
        assert not caught.value.transient
    assert not wapi.writes()


async def test_a_zone_delegated_with_a_text_ttl_is_refused(
    wapi: FakeWapi, infoblox: InfobloxProvider
) -> None:
    wapi.seed("cloud.example.com", [{"name": EU, "address": "10.0.0.1"}], ttl="thirty", use_ttl=True)
    with pytest.raises(ProviderError, match="whose ttl is 'thirty', not a number"):
        await infoblox.records("example.com")
