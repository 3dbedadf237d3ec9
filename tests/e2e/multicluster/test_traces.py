"""The trace contract across clusters, through a real OTLP receiver: a POST's reconcile queries the
peer as a DNS client span under it, and the edge delegation's RFC2136 update is a client span with
DNS attributes under `SaveZoneDelegation`."""

from __future__ import annotations

import secrets

import httpx
import pytest

from tests.e2e.multicluster.world import ips, manifest
from tests.support.otlp import OtlpHttpReceiver

pytestmark = pytest.mark.e2e
HOST = "traced.cloud.example.com"
CLIENT = 3  # SpanKind.CLIENT in OTLP


async def test_peer_query_and_rfc2136_update_are_client_spans(cluster) -> None:
    with OtlpHttpReceiver() as receiver:
        world = await cluster(
            "eu",
            "us",
            TRACING_ENABLED="true",
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.host_port,
            OTEL_BSP_SCHEDULE_DELAY="100",
        )
        body = manifest("traced", HOST, {"type": "roundRobin"})
        await world.apply(body, on=["us"])
        await world.converge(f"localtargets-{HOST}", {"eu": None, "us": ips("us")})

        trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
        async with httpx.AsyncClient(timeout=10) as client:
            created = await client.post(
                world.members["eu"].instance.api + "/apis/k8gb.io/v1beta1/namespaces/test-gslb/gslbs",
                json=body,
                headers={"traceparent": f"00-{trace_id}-{span_id}-01"},
            )
            assert created.status_code == 201, created.text
        await world.converge(HOST, ips("eu", "us"))

        def peer_query_in_trace(spans):
            return [
                s
                for s in spans
                if s.trace_id == trace_id
                and s.name == "peer.query"
                and s.attributes.get("dns.question.name", "").rstrip(".") == f"localtargets-{HOST}"
            ]

        def with_parent_and_grandparent(spans):
            # The Reconcile ends after its steps, so it may come in a later export batch: wait for it.
            by_id = {s.span_id: s for s in spans}
            return [
                q
                for q in peer_query_in_trace(spans)
                if q.parent_span_id in by_id and by_id[q.parent_span_id].parent_span_id in by_id
            ]

        spans = await receiver.wait_for(with_parent_and_grandparent)
        query = with_parent_and_grandparent(spans)[0]
        by_id = {s.span_id: s for s in spans}
        assert query.kind == CLIENT
        assert query.attributes["server.address"] == world.members["us"].address
        assert query.attributes["server.port"] == world.port
        parent = by_id[query.parent_span_id]
        assert parent.name == "peerTargets"
        assert by_id[parent.parent_span_id].name == "Reconcile"
        assert by_id[parent.parent_span_id].trace_id == trace_id

        def rfc2136_updates(spans):
            return [
                s
                for s in spans
                if s.name == "provider.apply" and s.attributes.get("provider.name") == "rfc2136"
            ]

        spans = await receiver.wait_for(rfc2136_updates)
        update = rfc2136_updates(spans)[0]
        by_id = {s.span_id: s for s in spans}
        assert update.kind == CLIENT
        assert update.attributes["server.port"] == world.port
        assert update.attributes["provider.zone"].rstrip(".") == "example.com"
        retry_or_delegation = by_id[update.parent_span_id]
        while retry_or_delegation.name != "SaveZoneDelegation":
            retry_or_delegation = by_id[retry_or_delegation.parent_span_id]
        assert retry_or_delegation.attributes["dns.zone"] == "cloud.example.com"

        # Peer refresh rounds: each is one root trace, `refreshPeers`, with its queries under it (each
        # query was a one-span trace of its own).
        def refresh_rounds(spans):
            roots = {s.span_id for s in spans if s.name == "refreshPeers" and s.parent_span_id == ""}
            return [s for s in spans if s.name == "peer.query" and s.parent_span_id in roots]

        spans = await receiver.wait_for(refresh_rounds)
        assert not [s for s in spans if s.name.startswith("peer.") and s.parent_span_id == ""]
