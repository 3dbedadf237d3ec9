"""`child_span` behaves as `start_as_current_span` does, checked on what the receiver gets."""

from __future__ import annotations

import asyncio

import pytest
from opentelemetry import propagate, trace
from opentelemetry.context import Context

from app.telemetry.carry import inject_headers
from app.telemetry.spans import child_span
from tests.support.otlp import OtlpHttpReceiver, tracing_to

ERROR = 2  # OTLP StatusCode.STATUS_CODE_ERROR


def test_a_child_of_the_current_span_current_inside_and_restored_after(
    otlp_receiver: OtlpHttpReceiver,
) -> None:
    with tracing_to(otlp_receiver) as handle:
        tracer = handle.tracer()
        with tracer.start_as_current_span("Reconcile") as parent:
            with child_span(tracer, "exposedIPs", {"k8gb.exposed_ips": ["10.0.0.1"]}) as step:
                assert trace.get_current_span() is step
                with child_span(tracer, "inner"):
                    pass
            assert trace.get_current_span() is parent
        assert handle.force_flush()
    spans = {s.name: s for s in otlp_receiver.spans}
    assert spans["exposedIPs"].parent_span_id == spans["Reconcile"].span_id
    assert spans["inner"].parent_span_id == spans["exposedIPs"].span_id
    assert spans["exposedIPs"].trace_id == spans["Reconcile"].trace_id
    assert spans["exposedIPs"].attributes == {"k8gb.exposed_ips": ["10.0.0.1"]}


def test_an_explicit_parent_and_links(otlp_receiver: OtlpHttpReceiver) -> None:
    with tracing_to(otlp_receiver) as handle:
        tracer = handle.tracer()
        with tracer.start_as_current_span("earlier") as earlier:
            pass
        link = trace.Link(earlier.get_span_context(), {"pygslb.cause.reason": "write"})
        with tracer.start_as_current_span("ambient") as ambient:
            with child_span(tracer, "Reconcile", parent=Context(), links=[link]) as root:
                assert trace.get_current_span() is root
            assert trace.get_current_span() is ambient
        assert handle.force_flush()
    spans = {s.name: s for s in otlp_receiver.spans}
    assert spans["Reconcile"].parent_span_id == ""  # a new root, not a child of the ambient span
    assert spans["Reconcile"].links == ((spans["earlier"].trace_id, spans["earlier"].span_id),)
    assert spans["Reconcile"].link_attributes == ({"pygslb.cause.reason": "write"},)


def test_an_escaping_error_is_recorded_with_status_error(otlp_receiver: OtlpHttpReceiver) -> None:
    with tracing_to(otlp_receiver) as handle:
        with pytest.raises(ValueError, match="zone refused"):
            with child_span(handle.tracer(), "SaveDNSEndpoint"):
                raise ValueError("zone refused")
        assert trace.get_current_span() is trace.INVALID_SPAN
        assert handle.force_flush()
    (span,) = otlp_receiver.spans_named("SaveDNSEndpoint")
    assert span.status_code == ERROR
    assert span.attributes == {}  # the exception is an event, not an attribute


async def test_cancellation_ends_the_span_without_an_error_but_says_so(
    otlp_receiver: OtlpHttpReceiver,
) -> None:
    with tracing_to(otlp_receiver) as handle:

        async def step() -> None:
            with child_span(handle.tracer(), "peerTargets"):
                await asyncio.sleep(10)

        task = asyncio.create_task(step())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert handle.force_flush()
    (span,) = otlp_receiver.spans_named("peerTargets")
    assert span.status_code == 0
    assert span.attributes == {"pygslb.cancelled": True}  # it did not finish: a reader must see that


def test_under_an_unsampled_span_nothing_is_started_and_the_context_goes_on(
    otlp_receiver: OtlpHttpReceiver,
) -> None:
    unsampled = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
    with tracing_to(otlp_receiver) as handle:
        tracer = handle.tracer()
        caller = propagate.extract({"traceparent": unsampled})
        with tracer.start_as_current_span("Reconcile", context=caller) as parent:
            assert not parent.is_recording()
            with child_span(tracer, "SaveDNSEndpoint") as step:
                assert step is parent
                headers = inject_headers({})
            with child_span(tracer, "sampled root", parent=Context()) as root:
                assert root.is_recording()  # an explicit parent is honoured as given
        assert handle.force_flush()
    assert headers["traceparent"].endswith("-00")
    assert headers["traceparent"].split("-")[1] == "0af7651916cd43dd8448eb211c80319c"
    assert [s.name for s in otlp_receiver.spans] == ["sampled root"]
