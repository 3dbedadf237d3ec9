"""A request to the Kubernetes API server carries the caller's trace onward (W3C `traceparent`), with the
aiohttp client span as its parent, in the caller's trace; the reviews that authenticate a caller do not
carry its baggage."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import baggage
from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from app.stores.kube.auth import KubeAuthorizer
from app.stores.kube.client import GSLB, connect
from app.telemetry.http import instrument_aiohttp
from tests.support.kmockapi import KubeApi
from tests.support.otlp import OtlpHttpReceiver, otlp_receiver, tracing_to

__all__ = ["otlp_receiver"]


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrument_aiohttp(tracer_provider=provider)
    try:
        yield provider, exporter
    finally:
        AioHttpClientInstrumentor().uninstrument()


async def test_a_kubernetes_api_request_names_its_client_span_as_parent(
    kube_api: KubeApi, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    client = await connect(str(kube_api.kubeconfig))  # a session created after instrumenting
    try:
        with provider.get_tracer("test").start_as_current_span("Reconcile") as caller:
            await client.list(GSLB, "default")
    finally:
        await client.close()
    request = list(kube_api)[-1]
    header = request.headers.get("traceparent")
    assert header is not None
    _, trace_id, parent_id, _ = header.split("-")
    (http_span,) = [s for s in exporter.get_finished_spans() if s.kind == SpanKind.CLIENT]
    assert int(trace_id, 16) == caller.get_span_context().trace_id == http_span.context.trace_id
    assert int(parent_id, 16) == http_span.context.span_id
    assert http_span.parent is not None and http_span.parent.span_id == caller.get_span_context().span_id


async def test_the_reviews_of_a_request_carry_its_trace_but_not_its_baggage(
    kube_api: KubeApi, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    """A REST caller's `baggage` is arbitrary text from someone not yet authenticated: the TokenReview and
    SubjectAccessReview made to judge that very request do not forward it to the API server. They stay
    in the caller's trace, and the request keeps its baggage afterwards."""
    provider, _ = spans
    kube_api.access.add_token("alice-token", "alice")
    kube_api.access.allow("alice", ["get"])
    client = await connect(str(kube_api.kubeconfig))
    caller = baggage.set_baggage("tenant", "'; DROP TABLE --", context=Context())
    token = otel_context.attach(caller)
    try:
        with provider.get_tracer("test").start_as_current_span("GET /apis/.../gslbs/{name}") as server:
            decision = await KubeAuthorizer(client).authorize(
                "alice-token", "get", "k8gb.io", "gslbs", "ns", "a"
            )
            assert baggage.get_baggage("tenant") == "'; DROP TABLE --"
    finally:
        otel_context.detach(token)
        await client.close()
    assert decision.allowed
    sent = [r for r in kube_api if r.resource is not None and r.resource.plural.endswith("reviews")]
    assert sorted(r.resource.plural for r in sent) == ["subjectaccessreviews", "tokenreviews"]
    for request in sent:
        assert "baggage" not in {name.lower() for name in request.headers}
        _, trace_id, _, _ = request.headers["traceparent"].split("-")
        assert int(trace_id, 16) == server.get_span_context().trace_id


async def test_calls_outside_any_traced_work_make_no_trace_of_their_own(
    kube_api: KubeApi, otlp_receiver: OtlpHttpReceiver
) -> None:
    """The informers' lists and watches and the leader-election lease call the API server outside any
    request or reconcile: with pygslb's sampler they record nothing (they were a one-span root trace
    each, every 2 s for the lease); the same call inside a reconcile is recorded in its trace."""
    with tracing_to(otlp_receiver) as handle:
        instrument_aiohttp(tracer_provider=handle.provider)
        try:
            client = await connect(str(kube_api.kubeconfig))
            try:
                await client.list(GSLB, "default")  # no span around it
                with handle.provider.get_tracer("test").start_as_current_span("Reconcile") as reconcile:
                    await client.list(GSLB, "default")
            finally:
                await client.close()
        finally:
            AioHttpClientInstrumentor().uninstrument()
    requests = [r for r in kube_api if r.resource is not None and r.resource.plural == "gslbs"]
    assert len(requests) == 2 and all("traceparent" in r.headers for r in requests)
    spans = otlp_receiver.spans
    trace_id = f"{reconcile.get_span_context().trace_id:032x}"
    assert {s.trace_id for s in spans} == {trace_id}
    assert sorted(s.name for s in spans) == ["GET", "Reconcile"]
