"""Real OTLP trace receivers for tests: HTTP (`POST /v1/traces`, protobuf, gzip) and gRPC (TraceService).

No collector can be installed here, so these stand in for one. They speak the real wire protocol, so
the SDK's own exporters deliver to them unchanged. Each runs on its own threads: a test may block its
event loop (the SDK's `force_flush` does) without starving the receiver.

Use from any test area:

    from tests.support.otlp import otlp_receiver, tracing_to  # noqa: F401  (fixture import)

    async def test_x(otlp_receiver):
        with tracing_to(otlp_receiver) as handle:       # a fresh, non-global provider
            with handle.tracer().start_as_current_span("work"): ...
        spans = await otlp_receiver.wait_for(lambda s: any(x.name == "work" for x in s))

Code that takes its tracer from the global provider (module-level `trace.get_tracer`) needs the one
process-wide provider: the `global_otlp_receiver` session fixture installs it once (the API allows one
global TracerProvider per process, and proxy tracers bind to the first one for good). Tests sharing it
filter spans by their own trace id (`by_trace`).
"""

from __future__ import annotations

import asyncio
import gzip
import os
import threading
import zlib
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
import pytest
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from app.settings import Settings
from app.telemetry.setup import TracingHandle, setup_tracing

TRACES_PATH = "/v1/traces"


@dataclass(frozen=True, slots=True)
class ReceivedSpan:
    """One exported span, ids as lowercase hex (parent_span_id is "" for a root)."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: int
    attributes: dict[str, Any]
    links: tuple[tuple[str, str], ...]
    link_attributes: tuple[dict[str, Any], ...]
    status_code: int
    resource: dict[str, Any]
    scope_name: str
    flags: int


def _value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return getattr(value, which)


def _attributes(pairs: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in pairs}


def _spans(request: trace_service_pb2.ExportTraceServiceRequest) -> list[ReceivedSpan]:
    out = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                out.append(
                    ReceivedSpan(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        name=span.name,
                        kind=span.kind,
                        attributes=_attributes(span.attributes),
                        links=tuple((link.trace_id.hex(), link.span_id.hex()) for link in span.links),
                        link_attributes=tuple(_attributes(link.attributes) for link in span.links),
                        status_code=span.status.code,
                        resource=resource,
                        scope_name=scope_spans.scope.name,
                        flags=span.flags,
                    )
                )
    return out


@dataclass
class SpanStore:
    """The spans a receiver on 127.0.0.1:`port` got so far, thread-safe, with an async wait."""

    _spans: list[ReceivedSpan] = field(default_factory=list)
    encodings: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = field(default_factory=list)
    port: int = 0

    @property
    def host_port(self) -> str:
        """The endpoint as k8gb takes it."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The endpoint as the OpenTelemetry standard takes it (base URL)."""
        return f"http://127.0.0.1:{self.port}"

    def add(self, request: trace_service_pb2.ExportTraceServiceRequest, encoding: str) -> None:
        spans = _spans(request)
        with self._lock:
            self._spans.extend(spans)
            self.encodings.append(encoding)
            waiters = list(self._waiters)
        for loop, event in waiters:
            if not loop.is_closed():
                loop.call_soon_threadsafe(event.set)

    @property
    def spans(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self._spans)

    def spans_named(self, name: str) -> list[ReceivedSpan]:
        return [s for s in self.spans if s.name == name]

    def by_trace(self, trace_id: str | int) -> list[ReceivedSpan]:
        wanted = f"{trace_id:032x}" if isinstance(trace_id, int) else trace_id.lower()
        return [s for s in self.spans if s.trace_id == wanted]

    def clear(self) -> None:
        with self._lock:
            self._spans.clear()
            self.encodings.clear()

    async def wait_for(
        self, predicate: Callable[[list[ReceivedSpan]], object], timeout: float = 10.0
    ) -> list[ReceivedSpan]:
        """Wait until `predicate(all spans so far)` is truthy; return the spans. TimeoutError names
        what did arrive, to make a failure readable."""
        event = asyncio.Event()
        waiter = (asyncio.get_running_loop(), event)
        with self._lock:
            self._waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                while True:
                    event.clear()
                    spans = self.spans
                    if predicate(spans):
                        return spans
                    await event.wait()
        except TimeoutError:
            names = sorted({s.name for s in self.spans})
            raise TimeoutError(
                f"spans received within {timeout}s did not satisfy the predicate: {names}"
            ) from None
        finally:
            with self._lock:
                self._waiters.remove(waiter)

    async def wait_for_span(self, name: str, timeout: float = 10.0) -> ReceivedSpan:
        spans = await self.wait_for(lambda spans: any(s.name == name for s in spans), timeout)
        return next(s for s in spans if s.name == name)


class _Handler(BaseHTTPRequestHandler):
    server: _HttpServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def _reply(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path != TRACES_PATH:
            self._reply(404, f"no OTLP signal at {self.path}".encode())
            return
        if self.headers.get_content_type() != "application/x-protobuf":
            self._reply(415, b"only application/x-protobuf is accepted")
            return
        encoding = (self.headers.get("Content-Encoding") or "identity").lower()
        try:
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            request = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
        except (OSError, zlib.error, DecodeError) as exc:
            self._reply(400, f"undecodable export request: {exc}".encode())
            return
        self.server.store.add(request, encoding)
        response = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        self._reply(200, response, "application/x-protobuf")


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, store: SpanStore) -> None:
        self.store = store
        super().__init__(("127.0.0.1", 0), _Handler)


class OtlpHttpReceiver(SpanStore):
    """OTLP/HTTP receiver on 127.0.0.1, a free port; a context manager that stops by itself."""

    def __init__(self) -> None:
        super().__init__()
        self._server = _HttpServer(self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="otlp-http", daemon=True
        )

    def __enter__(self) -> OtlpHttpReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, store: SpanStore) -> None:
        self.store = store

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        metadata = dict(context.invocation_metadata())
        self.store.add(request, str(metadata.get("grpc-encoding", "identity")))
        return trace_service_pb2.ExportTraceServiceResponse()


class OtlpGrpcReceiver(SpanStore):
    """OTLP/gRPC receiver (TraceService.Export) on 127.0.0.1, a free port, plaintext."""

    def __init__(self) -> None:
        super().__init__()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="otlp-grpc"))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceService(self), self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")

    def __enter__(self) -> OtlpGrpcReceiver:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop(grace=None).wait(5)


@contextmanager
def _env(**values: str) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def settings_for(
    receiver: OtlpHttpReceiver | OtlpGrpcReceiver, *, sampling_ratio: float = 1.0, endpoint: str | None = None
) -> Settings:
    protocol = "grpc" if isinstance(receiver, OtlpGrpcReceiver) else "http/protobuf"
    return Settings(
        tracing_enabled=True,
        otel_exporter_otlp_endpoint=endpoint or receiver.host_port,
        otel_exporter_otlp_protocol=protocol,
        tracing_sampling_ratio=sampling_ratio,
    )


@contextmanager
def tracing_to(
    receiver: OtlpHttpReceiver | OtlpGrpcReceiver,
    *,
    sampling_ratio: float = 1.0,
    endpoint: str | None = None,
    set_global: bool = False,
    shutdown_timeout_s: float = 5.0,
) -> Iterator[TracingHandle]:
    """`setup_tracing` aimed at `receiver`, batching every 50 ms (OTEL_BSP_SCHEDULE_DELAY) so spans
    arrive without an explicit flush; shut down (bounded) on exit."""
    settings = settings_for(receiver, sampling_ratio=sampling_ratio, endpoint=endpoint)
    with _env(OTEL_BSP_SCHEDULE_DELAY="50"):
        handle = setup_tracing(settings, set_global=set_global)
    try:
        yield handle
    finally:
        handle.shutdown(timeout_s=shutdown_timeout_s)


@pytest.fixture
def otlp_receiver() -> Iterator[OtlpHttpReceiver]:
    with OtlpHttpReceiver() as receiver:
        yield receiver


@pytest.fixture
def otlp_grpc_receiver() -> Iterator[OtlpGrpcReceiver]:
    with OtlpGrpcReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="session")
def global_otlp_receiver() -> Iterator[OtlpHttpReceiver]:
    """The receiver behind the process-wide TracerProvider (installed on first use, kept for the
    session). Filter by trace id: other tests' spans arrive here too."""
    from opentelemetry import trace

    with OtlpHttpReceiver() as receiver, tracing_to(receiver, set_global=True) as handle:
        if trace.get_tracer_provider() is not handle.provider:
            pytest.fail("another TracerProvider was installed globally before global_otlp_receiver")
        yield receiver
