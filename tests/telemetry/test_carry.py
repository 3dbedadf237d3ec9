"""Context carried on objects and through the queue; the reconcile span rule checked on exported spans."""

from __future__ import annotations

import pytest
from opentelemetry import baggage, context, trace
from opentelemetry.context import Context

from app.telemetry import carry
from app.telemetry.carry import Cause
from tests.support.otlp import OtlpHttpReceiver, ReceivedSpan, tracing_to

T1, S1 = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
T2, S2 = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
T3, S3 = "11111111111111111111111111111111", "2222222222222222"


def tp(trace_id: str, span_id: str, flags: str = "01") -> str:
    return f"00-{trace_id}-{span_id}-{flags}"


def ids(ctx: Context | None) -> tuple[str, str]:
    assert ctx is not None
    sc = trace.get_current_span(ctx).get_span_context()
    return f"{sc.trace_id:032x}", f"{sc.span_id:016x}"


# --- annotations ----------------------------------------------------------------------------------


def test_annotations_round_trip_with_tracestate_and_generation() -> None:
    caller = carry.context_from_annotations({carry.TRACEPARENT: tp(T1, S1), carry.TRACESTATE: "a=1,b=2"})
    annotations = carry.annotations_from_context(caller, generation=7)
    assert annotations == {
        "k8gb.io/traceparent": tp(T1, S1),
        "k8gb.io/tracestate": "a=1,b=2",
        "k8gb.io/traceparent-generation": "7",
    }
    back = carry.context_from_annotations(annotations)
    assert ids(back) == (T1, S1)
    span_context = trace.get_current_span(back).get_span_context()
    assert span_context.is_remote and span_context.trace_flags.sampled
    assert span_context.trace_state.to_header() == "a=1,b=2"


def test_annotations_record_the_current_span_and_nothing_without_one() -> None:
    assert carry.annotations_from_context() == {}
    token = context.attach(carry.context_from_annotations({carry.TRACEPARENT: tp(T2, S2, "00")}) or Context())
    try:
        assert carry.annotations_from_context() == {carry.TRACEPARENT: tp(T2, S2, "00")}
        assert carry.cause_from_current("write") == Cause(tp(T2, S2, "00"), None, "write")
    finally:
        context.detach(token)
    assert carry.cause_from_current() == Cause(None, None, "write")


@pytest.mark.parametrize(
    "annotations",
    [
        None,
        {},
        {carry.TRACEPARENT: ""},
        {carry.TRACEPARENT: "garbage"},
        {carry.TRACEPARENT: tp("0" * 32, S1)},  # all-zero trace id is invalid
        {carry.TRACEPARENT: tp(T1, "0" * 16)},  # all-zero span id is invalid
        {carry.TRACEPARENT: tp(T1, S1).upper()},  # uppercase hex is not W3C
        {carry.TRACEPARENT: "ff-" + tp(T1, S1)[3:]},  # version ff is forbidden
        {carry.TRACESTATE: "a=1"},
    ],
)
def test_a_malformed_or_missing_traceparent_is_no_context(annotations: dict[str, str] | None) -> None:
    assert carry.context_from_annotations(annotations) is None


@pytest.mark.parametrize(
    ("marker", "generation", "expected"),
    [
        ("3", 3, True),
        ("2", 3, False),  # the annotation belongs to an older write
        (None, 3, False),  # a hand-set traceparent without its generation
        ("3", None, False),
    ],
)
def test_a_cause_is_taken_only_for_its_generation(
    marker: str | None, generation: int | None, expected: bool
) -> None:
    annotations = {carry.TRACEPARENT: tp(T1, S1)}
    if marker is not None:
        annotations[carry.TRACE_GENERATION] = marker
    cause = carry.cause_from_annotations(annotations, generation)
    assert (cause == Cause(tp(T1, S1), None, "write")) is expected
    assert (cause is None) is not expected


def test_a_cause_with_a_malformed_traceparent_is_dropped() -> None:
    annotations = {carry.TRACEPARENT: "00-nothex-00", carry.TRACE_GENERATION: "1"}
    assert carry.cause_from_annotations(annotations, 1) is None


def test_inject_headers_carries_the_current_context_and_baggage() -> None:
    ctx = carry.context_from_annotations({carry.TRACEPARENT: tp(T3, S3)})
    assert ctx is not None
    token = context.attach(baggage.set_baggage("tenant", "blue", ctx))
    try:
        headers = carry.inject_headers({"accept": "application/json"})
    finally:
        context.detach(token)
    assert headers == {"accept": "application/json", "traceparent": tp(T3, S3), "baggage": "tenant=blue"}


# --- the reconcile span rule, as exported -------------------------------------------------------


def reconcile(
    receiver: OtlpHttpReceiver, causes: list[Cause], root_reason: str | None, last_write: Cause | None = None
) -> ReceivedSpan:
    with tracing_to(receiver) as handle:
        # An ambient span must never adopt a reconcile: each one starts from its causes alone.
        with handle.tracer().start_as_current_span("ambient"):
            with carry.start_reconcile_span(
                handle.tracer(), "Reconcile", causes, root_reason, last_write=last_write
            ) as span:
                assert span.is_recording()
        assert handle.force_flush()
    (span_out,) = receiver.spans_named("Reconcile")
    return span_out


def test_one_write_is_the_parent(otlp_receiver: OtlpHttpReceiver) -> None:
    span = reconcile(otlp_receiver, [Cause(tp(T1, S1), "k=v", "write")], None)
    assert (span.trace_id, span.parent_span_id) == (T1, S1)
    assert span.links == ()
    assert span.attributes["pygslb.reconcile.causes"] == 1


def test_collapsed_writes_newest_is_parent_others_are_links(otlp_receiver: OtlpHttpReceiver) -> None:
    causes = [
        Cause(tp(T1, S1), None, "write"),
        Cause(None, None, "write"),  # a write without a context: counted, not linked
        Cause(tp(T2, S2), None, "annotation"),
        Cause(tp(T3, S3), None, "write"),
    ]
    span = reconcile(otlp_receiver, causes, None)
    assert (span.trace_id, span.parent_span_id) == (T3, S3)
    assert set(span.links) == {(T1, S1), (T2, S2)}
    assert {a["pygslb.cause.reason"] for a in span.link_attributes} == {"write", "annotation"}
    assert span.attributes["pygslb.reconcile.causes"] == 4


def test_the_same_context_twice_is_one_parent_and_no_link(otlp_receiver: OtlpHttpReceiver) -> None:
    same = Cause(tp(T1, S1), None, "write")
    span = reconcile(otlp_receiver, [same, same], None)
    assert (span.trace_id, span.parent_span_id, span.links) == (T1, S1, ())


@pytest.mark.parametrize("reason", ["resync", "health"])
def test_resync_or_health_change_is_a_new_root_linked_to_the_last_write(
    otlp_receiver: OtlpHttpReceiver, reason: str
) -> None:
    span = reconcile(otlp_receiver, [], reason, last_write=Cause(tp(T2, S2), None, "write"))
    assert span.parent_span_id == ""
    assert span.trace_id not in (T2, *(s.trace_id for s in otlp_receiver.spans_named("ambient")))
    assert span.links == ((T2, S2),)
    assert span.attributes["pygslb.reconcile.trigger"] == reason


def test_a_root_without_any_known_write_has_no_link(otlp_receiver: OtlpHttpReceiver) -> None:
    bad = Cause("bad", None, "write")
    span = reconcile(otlp_receiver, [Cause(None, None, "write")], None, last_write=bad)
    assert span.parent_span_id == ""
    assert span.links == ()
    assert span.attributes["pygslb.reconcile.trigger"] == "write"


def test_an_unsampled_writer_stays_unsampled(otlp_receiver: OtlpHttpReceiver) -> None:
    with tracing_to(otlp_receiver) as handle:
        tracer = handle.tracer()
        unsampled = Cause(tp(T1, S1, "00"), None, "write")
        with carry.start_reconcile_span(tracer, "Reconcile", [unsampled], None) as span:
            assert not span.is_recording()
            assert ids(trace.set_span_in_context(span))[0] == T1
        with tracer.start_as_current_span("marker"):
            pass
        assert handle.force_flush()
    assert [s.name for s in otlp_receiver.spans] == ["marker"]


def test_more_collapsed_writes_than_a_span_holds_keep_the_newest(otlp_receiver: OtlpHttpReceiver) -> None:
    """300 writes collapse into one reconcile: a span holds 128 links (the SDK's default limit), and those
    must be the newest writes' (the oldest were kept, so the writes nearest what was published lost their
    reconcile); the count says how many there were, the queue's dropped ones included."""
    causes = [Cause(tp(f"{n:032x}", f"{n:016x}"), None, "write") for n in range(1, 301)]
    with tracing_to(otlp_receiver) as handle:
        with carry.start_reconcile_span(handle.tracer(), "Reconcile", causes, None, dropped_causes=5):
            pass
        assert handle.force_flush()
    (span,) = otlp_receiver.spans_named("Reconcile")
    assert span.parent_span_id == f"{300:016x}"
    assert sorted(int(span_id, 16) for _, span_id in span.links) == list(range(172, 300))
    assert span.attributes["pygslb.reconcile.causes"] == 305


def test_a_peer_refresh_after_a_write_does_not_take_the_writes_reconcile(
    otlp_receiver: OtlpHttpReceiver,
) -> None:
    """A refresh round that sees a peer change while a write waits in the queue adds its cause: the
    reconcile stays the writer's child (one change, one trace from its caller), the round a link."""
    write, refresh = Cause(tp(T1, S1), None, "write"), Cause(tp(T2, S2), None, "peer-change")
    span = reconcile(otlp_receiver, [write, refresh], None)
    assert (span.trace_id, span.parent_span_id, span.links) == (T1, S1, ((T2, S2),))
    assert span.attributes["pygslb.reconcile.trigger"] == "write"
