"""The hand-written OTLP encoding says exactly what the SDK's encoder says: both are parsed with the
official protobuf classes and compared field by field, over spans that use every feature."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from app.telemetry.otlp_wire import encode_request


def _provider(service: str) -> tuple[TracerProvider, InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": service, "deployment": "test", "replicas": 3})
    )
    provider.add_span_processor(SimpleSpanProcessor(memory))
    return provider, memory


@pytest.fixture
def spans() -> Iterator[list[ReadableSpan]]:
    """Spans from two resources and three scopes, with every attribute type, events, links, errors."""
    first, first_memory = _provider("pygslb")
    second, second_memory = _provider("other")
    remote = SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(1))
    local = SpanContext(0x123, 0x456, is_remote=False, trace_flags=TraceFlags(1))
    state = TraceState([("vendor", "value"), ("k8gb", "1")])
    remote_parent = trace.set_span_in_context(
        trace.NonRecordingSpan(
            SpanContext(0x77, 0x88, is_remote=True, trace_flags=TraceFlags(1), trace_state=state)
        )
    )
    controller = first.get_tracer(
        "pygslb.controller", "1.2.3", schema_url="https://opentelemetry.io/schemas/1.21.0"
    )
    api = first.get_tracer("pygslb.api")
    attributes = {
        "text": "roundRobin",
        "empty": "",
        "unicode": "zürich ✓",
        "yes": True,
        "no": False,
        "one": 1,
        "zero": 0,
        "negative": -42,
        "big": 2**62,
        "ratio": 0.25,
        "hosts": ["a.cloud.example.com", "b.cloud.example.com"],
        "flags": [True, False],
        "counts": [1, -2, 3],
        "weights": [0.5, 1.5],
        "nothing": [],
    }
    with controller.start_as_current_span(
        "Reconcile",
        context=remote_parent,
        links=[Link(remote, {"pygslb.cause.reason": "write"}), Link(local)],
    ) as root:
        root.set_attributes(attributes)
        with controller.start_as_current_span("gslbDNSEndpoint", kind=SpanKind.CLIENT) as step:
            step.add_event("planned", {"records": 2, "names": ["x", "y"]})
            step.add_event("bare")
        with controller.start_as_current_span("SaveDNSEndpoint") as failing:
            failing.record_exception(ValueError("zone refused"))
            failing.set_status(Status(StatusCode.ERROR, "zone refused"))
    with api.start_as_current_span("POST /gslbs", kind=SpanKind.SERVER) as server:
        server.set_attribute("one", True)  # same key and hash as the int 1 above: must encode as a bool
        server.set_status(Status(StatusCode.OK))
    for kind in (SpanKind.PRODUCER, SpanKind.CONSUMER):
        with second.get_tracer("other.scope").start_as_current_span("queue", kind=kind) as other:
            other.set_attribute("counts", [True])  # a cached key with another element type
    yield [*first_memory.get_finished_spans(), *second_memory.get_finished_spans()]
    first.shutdown()
    second.shutdown()


def _ours(spans: list[ReadableSpan]) -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest.FromString(encode_request(spans))


def test_same_message_as_the_sdk_encoder(spans: list[ReadableSpan]) -> None:
    assert len(spans) == 6
    assert _ours(spans) == encode_spans(spans)


def test_same_message_when_encoded_again_from_the_cache(spans: list[ReadableSpan]) -> None:
    encode_request(spans)
    assert _ours(spans) == encode_spans(spans)
    assert _ours(list(reversed(spans))) == encode_spans(list(reversed(spans)))


def test_the_message_carries_what_a_receiver_needs(spans: list[ReadableSpan]) -> None:
    message = _ours(spans)
    services = [
        next(kv.value.string_value for kv in r.resource.attributes if kv.key == "service.name")
        for r in message.resource_spans
    ]
    assert services == ["pygslb", "other"]
    first = message.resource_spans[0]
    assert [s.scope.name for s in first.scope_spans] == ["pygslb.controller", "pygslb.api"]
    assert first.scope_spans[0].scope.version == "1.2.3"
    reconcile = next(s for s in first.scope_spans[0].spans if s.name == "Reconcile")
    assert reconcile.parent_span_id == (0x88).to_bytes(8, "big")
    assert reconcile.trace_state == "vendor=value,k8gb=1"
    assert [link.span_id for link in reconcile.links] == [
        (0xDEF).to_bytes(8, "big"),
        (0x456).to_bytes(8, "big"),
    ]
    values = {kv.key: kv.value for kv in reconcile.attributes}
    assert values["negative"].int_value == -42
    assert values["yes"].bool_value is True
    assert list(values["hosts"].array_value.values[1].string_value) == list("b.cloud.example.com")
    failing = next(s for s in first.scope_spans[0].spans if s.name == "SaveDNSEndpoint")
    assert (failing.status.code, failing.status.message) == (2, "zone refused")
    assert failing.events[0].name == "exception"


def test_an_empty_batch_is_an_empty_request() -> None:
    assert encode_request([]) == b""
    assert ExportTraceServiceRequest.FromString(b"") == encode_spans([])
