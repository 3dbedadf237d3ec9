"""Peer queries are CLIENT spans under the caller's span, with the DNS attributes and errors marked."""

from __future__ import annotations

import asyncio

import pytest

from app.peers.notify import send_notify
from app.peers.query import PeerResolver
from tests.peers.conftest import DnsNet
from tests.support.otlp import OtlpHttpReceiver, ReceivedSpan, otlp_receiver, tracing_to

__all__ = ["otlp_receiver"]

HOST = "app.cloud.example.com"
LOCALTARGETS = f"localtargets-{HOST}"
CLIENT, ERROR = 3, 2  # OTLP SpanKind.SPAN_KIND_CLIENT, Status.STATUS_CODE_ERROR


async def test_peer_query_spans(dns_net: DnsNet, otlp_receiver: OtlpHttpReceiver) -> None:
    await dns_net.edge({"us": "127.0.0.2", "za": "127.0.0.3"})
    await dns_net.start("127.0.0.2", records={LOCALTARGETS: ["10.2.0.1"]})
    await dns_net.start("127.0.0.3", mode="refuse")

    with tracing_to(otlp_receiver) as handle:  # a provider of its own: the global one stays untouched
        resolver = PeerResolver(
            dns_net.directory(["us", "za"], tracer=handle.tracer("pygslb.peers")), timeout=2.0
        )
        with handle.tracer("tests").start_as_current_span("reconcile") as parent:
            await resolver.localtargets(HOST)
        context = parent.get_span_context()
        trace_id, parent_id = f"{context.trace_id:032x}", f"{context.span_id:016x}"

        def mine(spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
            return [s for s in spans if s.trace_id == trace_id and s.name.startswith("peer.")]

        spans = mine(await otlp_receiver.wait_for(lambda all_spans: len(mine(all_spans)) >= 5))
    assert all(s.parent_span_id == parent_id and s.kind == CLIENT for s in spans)
    assert all(s.scope_name == "pygslb.peers" for s in spans)
    assert sorted(s.attributes["dns.question.name"] for s in spans if s.name == "peer.glue") == [
        "gslb-ns-us-cloud.example.com",
        "gslb-ns-za-cloud.example.com",
    ]

    queries = [s for s in spans if s.name == "peer.query"]
    [ok] = [s for s in queries if s.attributes["peer.geo_tag"] == "us"]
    assert ok.attributes == {
        "dns.question.name": LOCALTARGETS,
        "dns.question.type": "A",
        "server.address": "127.0.0.2",
        "server.port": dns_net.port,
        "peer.geo_tag": "us",
        "dns.response_code": "NOERROR",
        "dns.answers": ["10.2.0.1"],
    }
    assert ok.status_code != ERROR
    failed = [s for s in queries if s.attributes["peer.geo_tag"] == "za"]
    assert sorted((s.attributes["server.port"], s.attributes["error.type"]) for s in failed) == sorted(
        [(dns_net.port, "REFUSED"), (53, "connection_refused")]
    )
    assert all(s.status_code == ERROR for s in failed)


async def test_notify_spans(dns_net: DnsNet, otlp_receiver: OtlpHttpReceiver) -> None:
    await dns_net.start("127.0.0.2")
    with tracing_to(otlp_receiver) as handle:
        tracer = handle.tracer("pygslb.peers")
        with tracer.start_as_current_span("Reconcile"):  # sent by a reconcile (outside one: not recorded)
            await send_notify([LOCALTARGETS], [("127.0.0.2", dns_net.port)], tracer=tracer)
        span = await otlp_receiver.wait_for_span("peer.notify")
    assert span.kind == CLIENT and span.status_code != ERROR
    assert span.attributes["dns.question.type"] == "SOA" and span.attributes["dns.response_code"] == "NOERROR"


async def test_a_query_cut_off_at_shutdown_says_so(dns_net: DnsNet, otlp_receiver: OtlpHttpReceiver) -> None:
    """A peer that does not answer, and the reconcile asking it is cancelled (shutdown): the query span
    ends marked `pygslb.cancelled`, not as a query that finished without an answer's attributes."""
    await dns_net.edge({"us": "127.0.0.2"})
    await dns_net.start("127.0.0.2", mode="silent")
    with tracing_to(otlp_receiver) as handle:
        resolver = PeerResolver(dns_net.directory(["us"], tracer=handle.tracer("pygslb.peers")), timeout=30.0)
        with handle.tracer("tests").start_as_current_span("reconcile"):
            asking = asyncio.create_task(resolver.localtargets(HOST))
            await asyncio.sleep(0.3)
            asking.cancel()
            with pytest.raises(asyncio.CancelledError):
                await asking
        span = await otlp_receiver.wait_for_span("peer.query")
    assert span.attributes.get("pygslb.cancelled") is True and span.status_code != ERROR
