"""Record the writer's trace context on a Gslb, tied to the generation the write creates.

The rules live in app/telemetry/carry.py; this module applies them to an incoming write. The context is
the current span's (the server span when tracing is on). With tracing off there is no current span, so
the caller's own `traceparent` header is recorded instead: the reconcile still joins the caller's trace.
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import trace

from app.domain.gslb import TRACE_GENERATION_ANNOTATION, TRACEPARENT_ANNOTATION, TRACESTATE_ANNOTATION, Gslb
from app.telemetry.carry import Cause, annotations_from_context, context_from_annotations


def traceparent_of(gslb: Gslb) -> str | None:
    return (gslb.metadata.annotations or {}).get(TRACEPARENT_ANNOTATION)


def stamp_trace(
    gslb: Gslb,
    *,
    generation: int,
    caller_set: bool,
    headers: Mapping[str, str],
    caller_marker: str | None = None,
) -> Gslb:
    """`gslb` with trace annotations for `generation`.

    `caller_set`: the client wrote `k8gb.io/traceparent` itself in this write; keep theirs and only mark
    the generation, unless the generation marker it sent with it (`caller_marker`) names another
    generation: that is a copy of an earlier read (`gslb get -o yaml`, then apply), and an older write's
    context never claims a newer change. Otherwise any older trace annotations are replaced (or dropped
    when there is no context at all, so a new generation never inherits a stale cause).
    """
    annotations = dict(gslb.metadata.annotations or {})
    if caller_set and caller_marker is not None and caller_marker != str(generation):
        caller_set = False
    if caller_set and context_from_annotations(annotations) is None:
        caller_set = False  # not a traceparent: the request's own context is recorded in its place
    if caller_set:
        annotations[TRACE_GENERATION_ANNOTATION] = str(generation)
    else:
        for key in (TRACEPARENT_ANNOTATION, TRACESTATE_ANNOTATION, TRACE_GENERATION_ANNOTATION):
            annotations.pop(key, None)
        context = None  # None: the current context (nothing is recorded when it has no valid span)
        if not trace.get_current_span().get_span_context().is_valid:
            context = Cause(headers.get("traceparent"), headers.get("tracestate"), "http").context()
        annotations.update(annotations_from_context(context, generation=generation))
    metadata = gslb.metadata.model_copy(update={"annotations": annotations or None})
    return gslb.model_copy(update={"metadata": metadata})
