"""The SDK's OTLP/HTTP exporter with the request body written by `otlp_wire`.

Everything else (endpoint, headers, compression, TLS, timeouts, retries, the OTEL_EXPORTER_OTLP_*
variables) stays the SDK's own. Only the encoding changes: it runs on the batch processor's thread,
where the SDK's object-per-field encoder held the GIL the event loop needs about as long as creating
the spans took. If the SDK's internals ever move, the SDK's own export path is used.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as _SdkHttpExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

from app.telemetry.otlp_wire import encode_request

log = logging.getLogger("pygslb.telemetry")


class HttpSpanExporter(_SdkHttpExporter):
    """OTLP/HTTP (protobuf); the body comes from `encode_request`, the sending from the SDK's client."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        client = getattr(self, "_client", None)
        metrics = getattr(self, "_metrics", None)
        if self._shutdown or client is None or metrics is None or not hasattr(client, "export"):
            return super().export(spans)
        with metrics.export_operation(len(spans)) as outcome:
            try:
                body = encode_request(spans)
            except Exception as exc:  # a span the wire encoder cannot write must not kill the thread
                log.error("could not encode %d spans for export: %s", len(spans), exc)
                outcome.error = exc
                return SpanExportResult.FAILURE
            sent = client.export(body)
            if not sent.success:
                outcome.error = sent.error
                return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS
