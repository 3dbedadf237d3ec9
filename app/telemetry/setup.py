"""Turn tracing on (or leave it off) once, at process start.

With `TRACING_ENABLED=false` nothing of the SDK is imported and no TracerProvider is installed: every
tracer is the API's no-op tracer, which still passes a caller's context through (so a traced caller's
context reaches the annotations and outgoing requests even through a disabled hop). The W3C propagator
(tracecontext + baggage) is installed either way, because extracting and injecting headers is cheap and
keeps traces continuous across processes.

With tracing enabled the SDK part lives in `app.telemetry._sdk`, imported only then.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from opentelemetry import propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context, get_current
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from app.otlp import otlp_endpoint as otlp_endpoint  # re-exported: the rule's historical home
from app.settings import Settings
from app.telemetry.logs import bound_caller_header_warnings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from prometheus_client import CollectorRegistry

Protocol = Literal["http/protobuf", "grpc"]

log = logging.getLogger("pygslb.telemetry")


class NoPropagation(TextMapPropagator):
    """OTEL_PROPAGATORS=none: nothing extracted or injected. The API's empty composite for it hands back
    the `None` context it is given, and the ASGI instrumentation (and our pass-through) then failed every
    request; this extracts into the current context instead."""

    def extract(
        self, carrier: CarrierT, context: Context | None = None, getter: Getter[CarrierT] = default_getter
    ) -> Context:
        return context if context is not None else get_current()

    def inject(
        self, carrier: CarrierT, context: Context | None = None, setter: Setter[CarrierT] = default_setter
    ) -> None:
        return None

    @property
    def fields(self) -> set[str]:
        return set()


def install_propagator() -> None:
    """W3C trace context + baggage as the global propagator, unless OTEL_PROPAGATORS chose otherwise
    (the API has then already built the one asked for; settings checked the names exist)."""
    configured = os.environ.get("OTEL_PROPAGATORS")
    if configured:
        if "none" in (name.strip().lower() for name in configured.split(",")):
            propagate.set_global_textmap(NoPropagation())
        return
    propagate.set_global_textmap(
        CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])
    )


@dataclass
class TracingHandle:
    """What `setup_tracing` installed; `shutdown` flushes within a bound and is safe to call twice."""

    enabled: bool
    provider: TracerProvider | None = None
    endpoint: str | None = None
    _closed: bool = field(default=False, repr=False)

    def tracer(self, name: str = "pygslb") -> trace.Tracer:
        """A tracer bound to this handle's provider (the no-op tracer when disabled)."""
        if self.provider is None:
            return trace.NoOpTracer()
        return self.provider.get_tracer(name)

    def force_flush(self, timeout_s: float = 5.0) -> bool:
        """Export what is queued; False when it did not finish within `timeout_s`."""
        provider = self.provider
        if provider is None or self._closed:
            return True
        return _bounded(lambda: provider.force_flush(int(timeout_s * 1000)), timeout_s)

    def shutdown(self, timeout_s: float = 5.0) -> bool:
        """Flush and stop the exporter, giving up after `timeout_s` (a collector that is down must not
        hold the process). True when everything finished in time."""
        provider = self.provider
        if provider is None or self._closed:
            return True
        self._closed = True
        return _bounded(provider.shutdown, timeout_s)

    async def ashutdown(self, timeout_s: float = 5.0) -> bool:
        """`shutdown` off the event loop, for an async caller at exit."""
        return await asyncio.to_thread(self.shutdown, timeout_s)


def _bounded(call: Callable[[], object], timeout_s: float) -> bool:
    # The SDK's own shutdown waits up to 30 s per processor; a daemon thread lets us stop waiting.
    worker = threading.Thread(target=call, name="pygslb-otel-flush", daemon=True)
    try:
        worker.start()
    except RuntimeError:  # at interpreter exit (the atexit hook) no thread can start; the export timeout
        # bounds the call instead
        call()
        return True
    worker.join(timeout_s)
    return not worker.is_alive()


def setup_tracing(
    settings: Settings, *, set_global: bool = True, registry: CollectorRegistry | None = None
) -> TracingHandle:
    """Install the propagator, and the SDK TracerProvider when `settings.tracing_enabled`.

    `set_global=False` builds the provider without installing it globally (the global provider can be
    set only once per process); tests use that to get a fresh provider each, via `handle.tracer()`.
    `registry`: where the span pipeline's own metrics go (/metrics' registry).
    """
    install_propagator()
    bound_caller_header_warnings()  # the propagators run either way, and echo what callers send
    if not settings.tracing_enabled:
        log.info("OTLP tracing is off (TRACING_ENABLED=false)")
        return TracingHandle(enabled=False)
    from app.telemetry import _sdk  # only now: a disabled process never imports the SDK

    endpoint = settings.otlp_traces_url
    # One line saying where spans go, as k8gb logs it: a typo'd endpoint or protocol is seen at start.
    log.info(
        "OTLP tracing is on: %s to %s, sampling ratio %g, export timeout %g s",
        settings.otlp_protocol,
        endpoint,
        settings.tracing_sampling_ratio,
        settings.otlp_export_timeout_s,
    )
    provider = _sdk.build_provider(
        service_name=settings.otel_service_name,
        # unset, the default gives way to OTEL_RESOURCE_ATTRIBUTES' service.name
        service_name_given="otel_service_name" in settings.model_fields_set,
        endpoint=endpoint,
        protocol=settings.otlp_protocol,
        sampling_ratio=settings.tracing_sampling_ratio,
        export_timeout_s=settings.otlp_export_timeout_s,
        registry=registry,
    )
    handle = TracingHandle(enabled=True, provider=provider, endpoint=endpoint)
    if set_global:
        trace.set_tracer_provider(provider)
        atexit.register(handle.shutdown)
    return handle
