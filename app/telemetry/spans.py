"""A cheaper `start_as_current_span` for the many small spans of a reconcile.

`Tracer.start_as_current_span` wraps `use_span` in two generator-based context managers (three through
a ProxyTracer, which module-level tracers are); a reconcile opens six or more of them, hundreds of
times a second in a resync. `child_span` does the same thing in one plain object: start the span,
make it current, and on the way out record an escaping exception with status ERROR (as `use_span`
does: `Exception` only; a cancelled span is marked `pygslb.cancelled`), restore the context and end
the span. Under an unsampled
span (sampling ratio 0 and a resync, say) it starts nothing at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from types import TracebackType

from opentelemetry import context, trace
from opentelemetry.context import Context
from opentelemetry.trace import Status, StatusCode
from opentelemetry.util import types

#: Set (true) on a span whose work was cancelled before it finished.
CANCELLED = "pygslb.cancelled"


class child_span:  # noqa: N801 - used like the function it stands in for
    """`with child_span(tracer, "name", attributes) as span:` a child of the current span, current
    inside the block."""

    __slots__ = ("_attributes", "_name", "_parent", "_links", "_span", "_token", "_tracer")

    def __init__(
        self,
        tracer: trace.Tracer,
        name: str,
        attributes: types.Attributes = None,
        *,
        parent: Context | None = None,
        links: Sequence[trace.Link] = (),
    ) -> None:
        """`parent` (default: the current context) is the context the span is a child of; the span is
        made current in the current context either way, as `start_as_current_span` does."""
        self._tracer = tracer
        self._name = name
        self._attributes = attributes
        self._parent = parent
        self._links = links

    def __enter__(self) -> trace.Span:
        if self._parent is None and not self._links:
            current = trace.get_current_span()
            span_context = current.get_span_context()
            if span_context.is_valid and not span_context.trace_flags.sampled and not current.is_recording():
                # Under an unsampled span nothing is recorded (pygslb's sampler is parent-based): skip
                # starting a span only to drop it. The unsampled parent stays current and goes onward.
                self._span = None
                return current
        span = self._span = self._tracer.start_span(
            self._name, context=self._parent, links=self._links, attributes=self._attributes
        )
        self._token = context.attach(trace.set_span_in_context(span))
        return span

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        span = self._span
        if span is None:
            return
        try:
            context.detach(self._token)
        finally:
            if isinstance(exc, Exception) and span.is_recording():
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            elif isinstance(exc, asyncio.CancelledError):
                mark_cancelled(span)
            span.end()


def mark_cancelled(span: trace.Span) -> None:
    """A span whose work was cancelled (shutdown, a timeout around it) ends without an error, as
    `use_span` ends it, but says so: otherwise it reads as work that finished."""
    span.set_attribute(CANCELLED, True)
