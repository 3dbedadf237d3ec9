"""Carry a trace context where HTTP headers cannot: onto stored objects and through the work queue.

Only the OpenTelemetry *API* is used here, so the API, the controller and the providers may import this
module whether tracing is enabled or not (with tracing disabled every helper is a cheap no-op or returns
empty values).

The rules (architecture.md, "Trace continuity"):

- A write records the writer's context on the object: `k8gb.io/traceparent` (+ `k8gb.io/tracestate`), and
  `k8gb.io/traceparent-generation`, the `metadata.generation` the context belongs to. A reconcile of that
  generation continues the trace, in this process or another; a later generation written without a context
  (a kubectl edit) does not inherit a stale one.
- Several writes collapsed into one reconcile: the newest cause is the parent, the others are span links.
- No cause (periodic resync, health change): a new root trace, linked to the last write's context.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util import types

from app.telemetry.spans import child_span

TRACEPARENT = "k8gb.io/traceparent"
TRACESTATE = "k8gb.io/tracestate"
TRACE_GENERATION = "k8gb.io/traceparent-generation"

#: Cause reasons that observe a change rather than make one (see `start_reconcile_span`).
OBSERVATIONS = frozenset({"peer-change"})

#: The name pygslb's own tracers carry (k8gb uses "github.com/k8gb-io/k8gb").
TRACER_NAME = "pygslb"

# Stored contexts are always W3C trace context, whatever the global propagator is configured to be.
_W3C = TraceContextTextMapPropagator()
#: The trace flags W3C Trace Context defines (sampled, random trace id); the others are reserved and
#: "vendors MUST set those to zero" in what they pass on.
KNOWN_FLAGS = trace.TraceFlags.SAMPLED | trace.TraceFlags.RANDOM_TRACE_ID


@dataclass(frozen=True, slots=True)
class Cause:
    """Why a reconcile runs: the trace context of the write (or event) that asked for it, if any."""

    traceparent: str | None
    tracestate: str | None
    reason: str

    def context(self) -> Context | None:
        """The remote parent context this cause names, or None when it names none (or a malformed one)."""
        if not self.traceparent:
            return None
        carrier = {"traceparent": self.traceparent}
        if self.tracestate:
            carrier["tracestate"] = self.tracestate
        ctx = _valid(_W3C.extract(carrier, context=Context()))
        return None if ctx is None else known_flags_only(ctx)


def known_flags_only(ctx: Context) -> Context:
    """`ctx` with the caller's reserved trace flags cleared (it goes on, to the object and outgoing calls)."""
    caller = trace.get_current_span(ctx).get_span_context()
    if not caller.is_valid or not caller.trace_flags & ~KNOWN_FLAGS:
        return ctx
    cleared = trace.SpanContext(
        caller.trace_id,
        caller.span_id,
        is_remote=caller.is_remote,
        trace_flags=trace.TraceFlags(caller.trace_flags & KNOWN_FLAGS),
        trace_state=caller.trace_state,
    )
    return trace.set_span_in_context(trace.NonRecordingSpan(cleared), ctx)


def tracer(name: str = TRACER_NAME) -> trace.Tracer:
    """A tracer from the global provider, resolved at call time (so it follows `setup_tracing`)."""
    return trace.get_tracer(name)


def _valid(ctx: Context) -> Context | None:
    return ctx if trace.get_current_span(ctx).get_span_context().is_valid else None


def _w3c_headers(ctx: Context | None) -> dict[str, str]:
    if not trace.get_current_span(ctx).get_span_context().is_valid:
        return {}
    carrier: dict[str, str] = {}
    _W3C.inject(carrier, context=ctx)
    return carrier


def annotations_from_context(ctx: Context | None = None, *, generation: int | None = None) -> dict[str, str]:
    """The annotations that record `ctx` (default: the current context) on an object.

    Empty when there is no valid span context. With `generation`, the generation marker is included;
    the writer passes the generation the write will produce.
    """
    headers = _w3c_headers(ctx)
    if not headers:
        return {}
    annotations = {TRACEPARENT: headers["traceparent"]}
    if headers.get("tracestate"):
        annotations[TRACESTATE] = headers["tracestate"]
    if generation is not None:
        annotations[TRACE_GENERATION] = str(generation)
    return annotations


def context_from_annotations(annotations: Mapping[str, str] | None) -> Context | None:
    """The context recorded on an object, or None when absent or malformed (never an error)."""
    if not annotations:
        return None
    return Cause(annotations.get(TRACEPARENT), annotations.get(TRACESTATE), "annotation").context()


def cause_from_current(reason: str = "write") -> Cause:
    """The current context as a cause for the work queue (fields None when there is no valid span)."""
    headers = _w3c_headers(None)
    return Cause(headers.get("traceparent"), headers.get("tracestate"), reason)


def cause_from_annotations(
    annotations: Mapping[str, str] | None, generation: int | None, reason: str = "write"
) -> Cause | None:
    """The cause recorded on an object for exactly this `generation` (its marker says so), else None:
    what a reconcile after a restart, or a resync's link, goes by."""
    if not annotations or generation is None or annotations.get(TRACE_GENERATION) != str(generation):
        return None
    return _valid_cause(Cause(annotations.get(TRACEPARENT), annotations.get(TRACESTATE), reason))


def cause_of_write(
    annotations: Mapping[str, str] | None,
    generation: int | None,
    reason: str = "write",
    *,
    traceparent_written: bool,
    marker_written: bool,
) -> Cause | None:
    """The cause of one write, seen as it happened: the context this very write recorded, else None.

    Trace annotations the write did not touch were left by an earlier write (a `kubectl annotate`,
    label or edit after a traced POST is not that caller's change). A marker the write did not touch
    beside a traceparent it changed was left by another writer (kubectl's apply keeps annotations it
    did not set): the traceparent stands unmarked then. A marker the write set names the generation
    its context belongs to, and a copy of an older read names an older one; an unmarked traceparent
    (what kubectl users write) is the cause of the write that set it.
    """
    if not annotations or generation is None or not (traceparent_written or marker_written):
        return None
    marker = annotations.get(TRACE_GENERATION) if marker_written else None
    if marker is None and not traceparent_written:
        return None
    if marker is not None and marker != str(generation):
        return None
    return _valid_cause(Cause(annotations.get(TRACEPARENT), annotations.get(TRACESTATE), reason))


def _valid_cause(cause: Cause) -> Cause | None:
    return cause if cause.context() is not None else None


def _link(cause: Cause, ctx: Context) -> trace.Link:
    span_context = trace.get_current_span(ctx).get_span_context()
    return trace.Link(span_context, {"pygslb.cause.reason": cause.reason})


@contextmanager
def start_reconcile_span(
    tracer: trace.Tracer,
    name: str,
    causes: Sequence[Cause],
    root_reason: str | None,
    *,
    last_write: Cause | None = None,
    attributes: types.Attributes = None,
    dropped_causes: int = 0,
) -> Iterator[trace.Span]:
    """Start (as current) the span of one reconcile, applying the queue rule.

    `causes` are in arrival order, oldest first. The newest cause with a valid context is the parent
    (the newest write's, when an observation such as a peer refresh came later) and every other valid
    cause becomes a link. Without any, the span is a new root (an explicitly empty
    parent context, so an ambient span cannot adopt it), linked to `last_write` when that is valid.
    Links are handed over oldest first: the SDK keeps the last ones when there are more than a span
    may hold (OTEL_SPAN_LINK_COUNT_LIMIT, 128), so the newest causes stay.
    """
    contexts = [(cause, ctx) for cause in causes if (ctx := cause.context()) is not None]
    # A write's caller keeps its reconcile when an observation (a peer refresh round) came after it:
    # observations are parents only of a reconcile no write asked for.
    writes = [(cause, ctx) for cause, ctx in contexts if cause.reason not in OBSERVATIONS]
    if writes and writes[-1] is not contexts[-1]:
        contexts = [c for c in contexts if c is not writes[-1]] + [writes[-1]]
    attrs: dict[str, types.AttributeValue] = dict(attributes or {})
    attrs["pygslb.reconcile.causes"] = len(causes) + dropped_causes
    if contexts:
        newest, parent = contexts[-1]
        parent_id = trace.get_current_span(parent).get_span_context()
        seen = {(parent_id.trace_id, parent_id.span_id)}
        links = []
        for cause, ctx in reversed(contexts[:-1]):
            span_context = trace.get_current_span(ctx).get_span_context()
            if (span_context.trace_id, span_context.span_id) not in seen:
                seen.add((span_context.trace_id, span_context.span_id))
                links.append(_link(cause, ctx))
        links.reverse()  # oldest first (see above)
        attrs.setdefault("pygslb.reconcile.trigger", newest.reason)
    else:
        parent = Context()
        last = last_write.context() if last_write is not None else None
        links = [_link(last_write, last)] if last_write is not None and last is not None else []
        fallback = causes[-1].reason if causes else "resync"
        attrs.setdefault("pygslb.reconcile.trigger", root_reason or fallback)
    with child_span(tracer, name, attrs, parent=parent, links=links) as span:
        yield span


def inject_headers[H: MutableMapping[str, str]](headers: H) -> H:
    """Add the current context to outgoing HTTP headers (global propagator: traceparent, tracestate,
    baggage), for clients that are not auto-instrumented. Returns the same mapping."""
    propagate.inject(headers)
    return headers
