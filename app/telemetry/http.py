"""HTTP in and out: the API's server spans, the `traceresponse` header, and instrumented clients.

Every response carries `traceresponse` (W3C Trace Context level 2,
`00-<trace-id>-<span-id>-<flags>`), so a caller always learns which trace its request joined:

- tracing enabled: the ids of the server span (a child of the caller's context, or a new root when the
  caller sent none or a malformed `traceparent`); the flags say whether this hop sampled it.
- tracing disabled: there is no server span. The caller's context is passed through unchanged (so a
  write still records it on the object, for a traced process to join), and `traceresponse` names the
  caller's own trace and span with the sampled flag cleared: this hop recorded nothing. Without a valid
  caller context it carries fresh random ids (flags `02`: random trace id, not sampled), which are
  not propagated anywhere: an unsampled made-up parent would only stop a traced process downstream
  from sampling.

A malformed header never fails the request.

Server spans are named as `opentelemetry-instrumentation-fastapi` names them (`GET /apis/.../{name}`,
attribute `http.route`), but from the route FastAPI itself matched: the instrumentation's own naming
matches the request against every route a second time before FastAPI routes it, which cost about a
tenth of a GET's CPU. The span starts named by its method and is renamed when the response starts;
a request FastAPI did not route to an endpoint is named by the instrumentation's own rule then.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any, cast

import httpx
from fastapi import FastAPI
from opentelemetry import context, propagate, trace
from opentelemetry.semconv.attributes.http_attributes import HTTP_ROUTE
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.http import sanitize_method
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.telemetry.carry import KNOWN_FLAGS, known_flags_only

#: A server span's name and attributes from the ASGI scope (the instrumentation's `default_span_details`).
SpanDetails = Callable[[Scope], tuple[str, dict[str, str]]]
#: Where the server-request hook leaves the server span for `TraceResponseMiddleware`.
SERVER_SPAN_SCOPE_KEY = "pygslb.server_span"
#: Where the pass-through (tracing disabled) leaves the caller's span context for `traceresponse`.
CALLER_SCOPE_KEY = "pygslb.caller_span_context"
TRACERESPONSE = "traceresponse"

_W3C = TraceContextTextMapPropagator()
_SAMPLED = trace.TraceFlags.SAMPLED
_RANDOM = trace.TraceFlags.RANDOM_TRACE_ID


def without_duplicated_traceparent(scope: Scope) -> None:
    """Drop `traceparent` (and `tracestate`, which means nothing without it) from a request that sent it
    more than once. It is a single-valued header, so a repeated one is malformed (the W3C test suite
    expects a new trace): every reader after this (the server span, the stamp on the object,
    `traceresponse`) then sees the same thing, no caller context, instead of each picking its own copy."""
    headers = scope.get("headers") or ()
    if sum(1 for name, _ in headers if name.lower() == b"traceparent") > 1:
        scope["headers"] = [(n, v) for n, v in headers if n.lower() not in (b"traceparent", b"tracestate")]


def _headers(scope: Scope) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    return headers


def format_traceresponse(trace_id: int, span_id: int, flags: int) -> str:
    return f"00-{trace_id:032x}-{span_id:016x}-{flags & 0xFF:02x}"


def _fresh_ids() -> tuple[int, int]:
    # Never zero: all-zero ids are invalid in W3C trace context.
    return secrets.randbits(128) or 1, secrets.randbits(64) or 1


def traceresponse_for(scope: Scope) -> str:
    """The `traceresponse` value for a request: the server span if there is one, else see module doc."""
    span = scope.get(SERVER_SPAN_SCOPE_KEY)
    server = span.get_span_context() if isinstance(span, trace.Span) else None
    if server is not None and server.is_valid:
        return format_traceresponse(server.trace_id, server.span_id, server.trace_flags)
    caller = scope.get(CALLER_SCOPE_KEY)  # extracted once already (tracing disabled): no second warning
    if not isinstance(caller, trace.SpanContext):
        extracted = _W3C.extract(_headers(scope), context=context.Context())
        caller = trace.get_current_span(extracted).get_span_context()
    if caller.is_valid:
        flags = caller.trace_flags & KNOWN_FLAGS & ~_SAMPLED
        return format_traceresponse(caller.trace_id, caller.span_id, flags)
    trace_id, span_id = _fresh_ids()
    return format_traceresponse(trace_id, span_id, _RANDOM)


class TraceResponseMiddleware:
    """Pure ASGI middleware adding `traceresponse` to every HTTP response, errors included.

    It sits outside the OpenTelemetry middleware and reads the server span from the scope (left there by
    `remember_server_span`). With `pass_through_caller` (tracing disabled, no OpenTelemetry middleware)
    it also makes the caller's extracted context current for the request.
    """

    def __init__(
        self, app: ASGIApp, *, pass_through_caller: bool = False, name_fallback: SpanDetails | None = None
    ) -> None:
        self.app = app
        self.pass_through_caller = pass_through_caller
        self.name_fallback = name_fallback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        without_duplicated_traceparent(scope)

        # Routing rewrites the scope (a mount moves `root_path`); the fallback naming needs it as it came.
        arrived = dict(scope) if self.name_fallback is not None else scope

        async def send_with_traceresponse(message: Message) -> None:
            if message["type"] == "http.response.start":
                name_server_span(scope, self.name_fallback, arrived)
                headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != b"traceresponse"]
                headers.append((b"traceresponse", traceresponse_for(scope).encode("ascii")))
                message = {**message, "headers": headers}
            await send(message)

        token = None
        if self.pass_through_caller:
            caller = known_flags_only(propagate.extract(_headers(scope)))
            scope[CALLER_SCOPE_KEY] = trace.get_current_span(caller).get_span_context()
            token = context.attach(caller)
        try:
            await self.app(scope, receive, send_with_traceresponse)
        finally:
            if token is not None:
                context.detach(token)


def remember_server_span(span: trace.Span, scope: dict[str, Any]) -> None:
    """FastAPI instrumentation's server-request hook: note the server span for `traceresponse` and
    `name_server_span`."""
    scope[SERVER_SPAN_SCOPE_KEY] = span


def span_details_by_method(scope: Scope) -> tuple[str, dict[str, str]]:
    """The server span's provisional name: its method (the instrumentation's name for a request that
    matches no route). No route matching here; see `name_server_span`."""
    method = sanitize_method(str(scope.get("method", "")).strip())
    return ("HTTP" if method == "_OTHER" else method or "HTTP"), {}


def name_server_span(scope: Scope, fallback: SpanDetails | None = None, arrived: Scope | None = None) -> None:
    """Name a recording server span `<method> <route>` and set `http.route`, from the route FastAPI
    matched (`scope["route"]`). Without one (no route matched, a mount such as the docs' static files,
    a slash redirect, a body refused before routing) `fallback`, the instrumentation's own naming,
    decides, on the scope as it `arrived`: those requests are few, and the names stay exactly the
    instrumentation's."""
    span = scope.get(SERVER_SPAN_SCOPE_KEY)
    if not isinstance(span, trace.Span) or not span.is_recording():
        return
    route = getattr(scope.get("route"), "path", None)
    if isinstance(route, str):
        method, _ = span_details_by_method(scope)
        name, attributes = f"{method} {route}", {HTTP_ROUTE: route}
    elif fallback is not None:
        name, attributes = fallback(arrived if arrived is not None else scope)
    else:
        return
    span.update_name(name)
    span.set_attributes(attributes)


def _cheap_span_details(stack: ASGIApp) -> SpanDetails | None:
    """Give the instrumentation's middleware `span_details_by_method` instead of its route-matching
    default, and return that default (for `name_server_span`'s fallback). `default_span_details` is
    the middleware's constructor parameter; FastAPIInstrumentor offers no way to pass it. The
    middleware sits under one guarding ServerErrorMiddleware."""
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    layer: object = stack
    for _ in range(3):
        if isinstance(layer, OpenTelemetryMiddleware):
            default = cast(SpanDetails, layer.default_span_details)
            layer.default_span_details = span_details_by_method
            return default
        layer = getattr(layer, "app", None)
    return None


def sdk_installed() -> bool:
    """Whether a real (not proxy or no-op) TracerProvider is installed globally."""
    provider = trace.get_tracer_provider()
    return not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)


def instrument_app(
    app: FastAPI, *, tracer_provider: trace.TracerProvider | None = None, enabled: bool | None = None
) -> None:
    """Server spans (when tracing is enabled) and `traceresponse` (always) for `app`. Idempotent.

    `enabled` is normally `TracingHandle.enabled`; left None it is inferred: a `tracer_provider` given,
    or an SDK provider installed globally (so call this after `setup_tracing`). Disabled adds only the
    pass-through of the caller's context and `traceresponse`.
    """
    if getattr(app, "_pygslb_instrumented", False):
        return
    if enabled is None:
        enabled = tracer_provider is not None or sdk_installed()
    if enabled:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(
            app,
            tracer_provider=tracer_provider,
            exclude_spans=["send", "receive"],
            server_request_hook=remember_server_span,
        )
    build: Callable[[], ASGIApp] = app.build_middleware_stack

    def build_with_traceresponse() -> ASGIApp:
        stack = build()
        fallback = _cheap_span_details(stack) if enabled else None
        return TraceResponseMiddleware(stack, pass_through_caller=not enabled, name_fallback=fallback)

    app.build_middleware_stack = build_with_traceresponse  # type: ignore[method-assign]
    app.middleware_stack = None
    app._pygslb_instrumented = True  # type: ignore[attr-defined]


def instrument_httpx_client(
    client: httpx.AsyncClient | httpx.Client, *, tracer_provider: trace.TracerProvider | None = None
) -> None:
    """Client spans and `traceparent` on every request of `client` (with tracing disabled the no-op
    tracer still forwards the current context)."""
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor.instrument_client(client, tracer_provider=tracer_provider)


def instrument_aiohttp(*, tracer_provider: trace.TracerProvider | None = None) -> None:
    """Client spans and `traceparent` for every aiohttp session created from now on (the Kubernetes
    client uses aiohttp). Process-wide and idempotent."""
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor

    instrumentor = AioHttpClientInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(tracer_provider=tracer_provider)
