"""The OpenTelemetry SDK wiring; imported only when tracing is enabled (see `setup.setup_tracing`).

Export never slows a request or a reconcile: spans are queued in memory (bounded, the oldest are dropped
when full) and shipped by the batch processor's own thread, each export bounded by a short timeout.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence
from importlib import metadata

from opentelemetry.context import Context
from opentelemetry.metrics import MeterProvider, NoOpMeterProvider
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, OTELResourceDetector, Resource
from opentelemetry.sdk.resources import Attributes as ResourceAttributes
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind, TraceState, get_current_span
from opentelemetry.util.types import Attributes
from prometheus_client import CollectorRegistry

from app.otlp import batch_limits

log = logging.getLogger("pygslb.telemetry")

_INTERNAL_METRICS = "OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED"
#: Bucket bounds (seconds) of the export duration histogram on /metrics.
EXPORT_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def service_version() -> str:
    try:
        return metadata.version("pygslb")
    except metadata.PackageNotFoundError:
        return "0+unknown"


class NoOrphanCalls(Sampler):
    """Drop a CLIENT span that would start a trace of its own: an outgoing call made outside any
    request, reconcile or other traced work. Those are plumbing (the Kubernetes informers' lists and
    watches, the leader-election lease every 2 s): each would be a one-span trace nobody asked for,
    linked to nothing. The call still goes out, with an unsampled `traceparent`."""

    def __init__(self, inner: Sampler) -> None:
        self._inner = inner

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if kind is SpanKind.CLIENT and not get_current_span(parent_context).get_span_context().is_valid:
            return SamplingResult(Decision.DROP)
        return self._inner.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return f"{self._inner.get_description()},NoOrphanCalls"


def sampler(ratio: float) -> Sampler:
    """Parent-based: a caller's decision always wins; roots are sampled at `ratio` (k8gb's ~1.0 rule:
    within 1e-4 of 1 means always), except calls outside any traced work (`NoOrphanCalls`)."""
    if abs(ratio - 1.0) <= 1e-4:
        return NoOrphanCalls(ParentBased(ALWAYS_ON))
    return NoOrphanCalls(ParentBased(TraceIdRatioBased(ratio)))


def exporter(
    endpoint: str, protocol: str, timeout_s: float, meter_provider: MeterProvider | None = None
) -> SpanExporter:
    """The OTLP exporter for `protocol`; `endpoint` is already normalised by `setup.otlp_endpoint`.
    Headers and compression come from the standard OTEL_EXPORTER_OTLP_* variables. `timeout_s` is always
    given: the exporters would read OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT as seconds, where the standard
    (and k8gb's Go exporter) has milliseconds; settings converts them."""
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return GrpcExporter(
            endpoint=endpoint,
            insecure=endpoint.startswith("http://"),
            timeout=timeout_s,
            meter_provider=meter_provider,
        )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    return HttpExporter(endpoint=endpoint, timeout=timeout_s, meter_provider=meter_provider)


def resource(service_name: str, *, name_given: bool = True) -> Resource:
    """The resource of every span. A `service_name` not `name_given` (the settings' default, OTEL_SERVICE_NAME
    unset) gives way to OTEL_RESOURCE_ATTRIBUTES' `service.name`: the standard's order is OTEL_SERVICE_NAME,
    then the attributes, then a default."""
    attributes: dict[str, str] = {SERVICE_VERSION: service_version()}
    if name_given or not OTELResourceDetector().detect().attributes.get(SERVICE_NAME):
        attributes[SERVICE_NAME] = service_name
    created = Resource.create(attributes)
    return HashedOnce(dict(created.attributes), created.schema_url)


class HashedOnce(Resource):
    """A Resource that hashes its attributes once. The OTLP encoder groups every exported span by its
    resource, and `Resource.__hash__` serialises all the attributes to JSON each time: a fifth of the
    encoder's time per span, measured in-process. A resource never changes once built."""

    def __init__(self, attributes: ResourceAttributes, schema_url: str | None = None) -> None:
        super().__init__(attributes, schema_url)
        self._hash = super().__hash__()

    def __hash__(self) -> int:
        return self._hash


def build_provider(
    *,
    service_name: str,
    service_name_given: bool = True,
    endpoint: str,
    protocol: str,
    sampling_ratio: float,
    export_timeout_s: float,
    registry: CollectorRegistry | None = None,
) -> TracerProvider:
    """With `registry`, the SDK's own metrics of the span pipeline are in it (`self_metrics`)."""
    # shutdown_on_exit=False: the SDK's exit hook may wait 30 s on a dead collector; TracingHandle's
    # shutdown is bounded instead.
    provider = TracerProvider(
        sampler=sampler(sampling_ratio),
        resource=resource(service_name, name_given=service_name_given),
        shutdown_on_exit=False,
        meter_provider=NoOpMeterProvider(),  # per-span counts would cost every span; see _pipeline_metrics
    )
    meters = self_metrics(registry) if registry is not None else None
    with _pipeline_metrics(on=meters is not None):
        span_exporter = exporter(endpoint, protocol, export_timeout_s, meters)
        processor = _batch_processor(span_exporter, meters)
    provider.add_span_processor(processor)
    return provider


@contextlib.contextmanager
def _pipeline_metrics(*, on: bool) -> Iterator[None]:
    """The SDK's switch for its own metrics (OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED, off by default)
    is read when each part is built: turned on, unless the operator set it, only while the exporter and
    batch processor are. The tracers would read it too and count every span started and ended (about
    3 µs a span, a tenth of starting and ending one); the span pipeline counts once per batch."""
    if not on or _INTERNAL_METRICS in os.environ:
        yield
        return
    os.environ[_INTERNAL_METRICS] = "true"
    try:
        yield
    finally:
        os.environ.pop(_INTERNAL_METRICS, None)


def self_metrics(registry: CollectorRegistry) -> MeterProvider:
    """The SDK counts what its span pipeline does (spans queued, dropped when the queue is full,
    exported or failed, the queue's size and capacity) through the OpenTelemetry metrics API; this
    puts those series on /metrics, through OpenTelemetry's Prometheus exporter: otherwise spans lost to
    a full queue or a failing collector showed only as one rate-limited log line."""
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
    from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View

    reader = PrometheusMetricReader(disable_target_info=True, scope_info_enabled=False, registry=registry)
    # The SDK's default buckets (0, 5, 10, 25 ... 10000) are for milliseconds; this histogram is in
    # seconds, so every export (bounded by a 3 s timeout) fell in the first one.
    seconds = View(
        instrument_name="otel.sdk.exporter.operation.duration",
        aggregation=ExplicitBucketHistogramAggregation(EXPORT_SECONDS_BUCKETS),
    )
    return SdkMeterProvider(metric_readers=[reader], views=[seconds], shutdown_on_exit=False)


def _batch_processor(
    span_exporter: SpanExporter, meter_provider: MeterProvider | None = None
) -> BatchSpanProcessor:
    """Sizes from OTEL_BSP_* (checked by settings), passed explicitly so the SDK never refuses them."""
    limits = batch_limits(os.environ)
    if limits.capped:
        log.info(
            "OTEL_BSP_MAX_QUEUE_SIZE is %d: export batches hold at most that many spans too",
            limits.max_queue_size,
        )
    return BatchSpanProcessor(
        span_exporter,
        max_queue_size=limits.max_queue_size,
        max_export_batch_size=limits.max_export_batch_size,
        meter_provider=meter_provider,
    )
