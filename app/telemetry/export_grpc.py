"""The SDK's OTLP/gRPC exporter with the request built from `otlp_wire`'s bytes (imported only when
the protocol is gRPC: grpc is slow to import). Everything else stays the SDK's own."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as _SdkGrpcExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan

from app.telemetry.otlp_wire import encode_request


class GrpcSpanExporter(_SdkGrpcExporter):
    """OTLP/gRPC; the request message is parsed from `encode_request`'s bytes (upb parses in C, far
    cheaper than building it field by field in Python)."""

    def _translate_data(self, data: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
        request: ExportTraceServiceRequest = ExportTraceServiceRequest.FromString(encode_request(data))
        return request
