"""setup_tracing against real OTLP receivers: protocols, endpoint forms, sampling, resource, a dead collector,
and the disabled path (no SDK at all)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind
from prometheus_client import CollectorRegistry, generate_latest

from app.settings import Settings
from app.telemetry.carry import Cause
from app.telemetry.setup import setup_tracing
from tests.support.otlp import OtlpGrpcReceiver, OtlpHttpReceiver, settings_for, tracing_to

REPO = Path(__file__).resolve().parents[2]
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


def _caller(flags: str) -> Context:
    ctx = Cause(f"00-{CALLER_TRACE}-{CALLER_SPAN}-{flags}", None, "test").context()
    assert ctx is not None
    return ctx


@pytest.mark.parametrize(
    "endpoint",
    ["{host_port}", "{url}", "{url}/", "{url}/v1/traces"],
    ids=["k8gb-host-port", "url", "url-slash", "full-url"],
)
def test_http_export_reaches_the_receiver(otlp_receiver: OtlpHttpReceiver, endpoint: str) -> None:
    target = endpoint.format(host_port=otlp_receiver.host_port, url=otlp_receiver.url)
    with tracing_to(otlp_receiver, endpoint=target) as handle:
        with handle.tracer("pygslb.test").start_as_current_span(
            "Reconcile", kind=SpanKind.INTERNAL, attributes={"k8gb.gslb.name": "roundrobin", "n": 3}
        ):
            pass
        assert handle.force_flush()
    (span,) = otlp_receiver.spans_named("Reconcile")
    assert span.attributes == {"k8gb.gslb.name": "roundrobin", "n": 3}
    assert span.scope_name == "pygslb.test"
    assert span.parent_span_id == ""
    assert span.resource["service.name"] == "pygslb"
    assert span.resource["service.version"]


def test_the_traces_endpoint_is_used_as_given(otlp_receiver: OtlpHttpReceiver) -> None:
    """OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OpenTelemetry's signal-specific URL, wins over the general one
    and keeps its path: nothing is appended."""
    settings = Settings(
        tracing_enabled=True,
        otel_exporter_otlp_endpoint="127.0.0.1:9",  # would lose every span
        otel_exporter_otlp_traces_endpoint=f"{otlp_receiver.url}/v1/traces",
    )
    handle = setup_tracing(settings, set_global=False)
    assert handle.endpoint == f"{otlp_receiver.url}/v1/traces"
    with handle.tracer("pygslb.test").start_as_current_span("given"):
        pass
    assert handle.force_flush()
    (span,) = otlp_receiver.spans_named("given")
    assert span.scope_name == "pygslb.test"
    handle.shutdown()


def test_grpc_export_reaches_the_receiver(otlp_grpc_receiver: OtlpGrpcReceiver) -> None:
    with tracing_to(otlp_grpc_receiver) as handle:
        with handle.tracer().start_as_current_span("SaveDNSEndpoint", context=_caller("01")):
            pass
        assert handle.force_flush()
    (span,) = otlp_grpc_receiver.spans_named("SaveDNSEndpoint")
    assert (span.trace_id, span.parent_span_id) == (CALLER_TRACE, CALLER_SPAN)
    assert span.resource["service.name"] == "pygslb"


@pytest.mark.parametrize("general", [None, "http/protobuf"])
def test_the_traces_protocol_wins(
    otlp_grpc_receiver: OtlpGrpcReceiver, monkeypatch: pytest.MonkeyPatch, general: str | None
) -> None:
    """OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, as the standard requires of every signal-specific option, wins
    over OTEL_EXPORTER_OTLP_PROTOCOL (it was ignored: HTTP went to the gRPC port and no span arrived)."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc")
    if general:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", general)
    settings = Settings(tracing_enabled=True, otel_exporter_otlp_endpoint=otlp_grpc_receiver.host_port)
    handle = setup_tracing(settings, set_global=False)
    with handle.tracer().start_as_current_span("over-grpc"):
        pass
    assert handle.force_flush()
    assert [s.name for s in otlp_grpc_receiver.spans] == ["over-grpc"]
    handle.shutdown()


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_without_an_endpoint_the_protocol_chooses_the_port(protocol: str) -> None:
    """The standard's defaults: localhost:4318 for OTLP/HTTP, localhost:4317 for gRPC (gRPC went to the
    HTTP port)."""
    expected = {"http/protobuf": "http://localhost:4318/v1/traces", "grpc": "http://localhost:4317"}
    assert Settings(otel_exporter_otlp_protocol=protocol).otlp_traces_url == expected[protocol]
    assert Settings(otel_exporter_otlp_traces_protocol=protocol).otlp_traces_url == expected[protocol]


def test_gzip_compression_from_the_standard_variable(
    otlp_receiver: OtlpHttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
    with tracing_to(otlp_receiver) as handle:
        with handle.tracer().start_as_current_span("compressed"):
            pass
        assert handle.force_flush()
    assert otlp_receiver.encodings == ["gzip"]
    assert [s.name for s in otlp_receiver.spans] == ["compressed"]


def test_a_queue_smaller_than_the_default_batch_cuts_the_batch(
    otlp_receiver: OtlpHttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OTEL_BSP_MAX_QUEUE_SIZE=5 alone (the batch left at its default, 512) starts and exports: the
    batch is cut to the queue, where the SDK refused to start with a bare ValueError."""
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "5")
    with tracing_to(otlp_receiver) as handle:
        for i in range(3):
            with handle.tracer().start_as_current_span(f"small-queue-{i}"):
                pass
        assert handle.force_flush()
    assert sorted(s.name for s in otlp_receiver.spans) == [f"small-queue-{i}" for i in range(3)]


def test_service_name_comes_from_settings(otlp_receiver: OtlpHttpReceiver) -> None:
    settings = Settings(
        tracing_enabled=True, otel_exporter_otlp_endpoint=otlp_receiver.host_port, otel_service_name="gslb-eu"
    )
    handle = setup_tracing(settings, set_global=False)
    with handle.tracer().start_as_current_span("named"):
        pass
    assert handle.shutdown(timeout_s=5)
    assert otlp_receiver.spans_named("named")[0].resource["service.name"] == "gslb-eu"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "pygslb"),
        ({"OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attrs,deployment.environment=prod"}, "from-attrs"),
        (
            {
                "OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attrs,deployment.environment=prod",
                "OTEL_SERVICE_NAME": "from-service-name",
            },
            "from-service-name",
        ),
    ],
    ids=["default", "resource-attributes", "service-name-wins"],
)
def test_service_name_follows_the_standard_order(
    otlp_receiver: OtlpHttpReceiver, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str
) -> None:
    """OTEL_SERVICE_NAME, then `service.name` in OTEL_RESOURCE_ATTRIBUTES, then pygslb's default."""
    for name in ("OTEL_RESOURCE_ATTRIBUTES", "OTEL_SERVICE_NAME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings(tracing_enabled=True, otel_exporter_otlp_endpoint=otlp_receiver.host_port)
    handle = setup_tracing(settings, set_global=False)
    with handle.tracer().start_as_current_span("named"):
        pass
    assert handle.shutdown(timeout_s=5)
    resource = otlp_receiver.spans_named("named")[0].resource
    assert resource["service.name"] == expected
    assert resource["service.version"]
    if "OTEL_RESOURCE_ATTRIBUTES" in env:
        assert resource["deployment.environment"] == "prod"


@pytest.mark.parametrize(
    ("ratio", "parent_flags", "exported"),
    [
        (0.0, "01", True),  # a sampled caller is always sampled
        (0.0, None, False),  # an unsampled root at ratio 0
        (1.0, None, True),  # ratio 1.0 is ParentBased(ALWAYS_ON)
        (1.0, "00", False),  # ... which still respects a caller that did not sample
        (0.3, "01", True),
    ],
)
def test_sampling_is_parent_based(
    otlp_receiver: OtlpHttpReceiver, ratio: float, parent_flags: str | None, exported: bool
) -> None:
    with tracing_to(otlp_receiver, sampling_ratio=ratio) as handle:
        tracer = handle.tracer()
        parent = _caller(parent_flags) if parent_flags else Context()
        with tracer.start_as_current_span("candidate", context=parent):
            pass
        # A marker that every configuration exports proves the flush happened.
        with tracer.start_as_current_span("marker", context=_caller("01")):
            pass
        assert handle.force_flush()
    names = [s.name for s in otlp_receiver.spans]
    assert "marker" in names
    assert ("candidate" in names) is exported
    if exported and parent_flags:
        (candidate,) = otlp_receiver.spans_named("candidate")
        assert (candidate.trace_id, candidate.parent_span_id) == (CALLER_TRACE, CALLER_SPAN)


class BlackHole:
    """A collector that accepts connections and reads requests but never answers."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.requests = 0
        self.got_request = threading.Event()
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self._conns.append(conn)
            self.requests += 1
            self.got_request.set()

    def __enter__(self) -> BlackHole:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._sock.close()
        for conn in self._conns:
            conn.close()


@pytest.fixture
def black_hole() -> Iterator[BlackHole]:
    with BlackHole() as hole:
        yield hole


def test_a_hung_collector_never_holds_the_caller(black_hole: BlackHole) -> None:
    settings = Settings(tracing_enabled=True, otel_exporter_otlp_endpoint=f"127.0.0.1:{black_hole.port}")
    handle = setup_tracing(settings, set_global=False)
    tracer = handle.tracer()
    with tracer.start_as_current_span("first"):
        pass
    # The flush is bounded and says it did not finish: the export sits in the black hole.
    assert handle.force_flush(timeout_s=0.2) is False
    assert black_hole.got_request.wait(5)
    # While that export hangs, traced work carries on: spans only enter the in-memory queue.
    for i in range(200):
        with tracer.start_as_current_span(f"work-{i}") as span:
            span.set_attribute("i", i)
    assert black_hole.requests == 1
    # Shutdown gives up at its bound instead of waiting for the collector.
    assert handle.shutdown(timeout_s=0.3) is False


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
@pytest.mark.parametrize(
    "env",
    [
        {"OTEL_EXPORTER_OTLP_TIMEOUT": "300"},
        {"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "300", "OTEL_EXPORTER_OTLP_TIMEOUT": "600000"},
    ],
    ids=["general", "traces-wins"],
)
def test_the_export_timeout_is_in_milliseconds(
    black_hole: BlackHole, monkeypatch: pytest.MonkeyPatch, protocol: str, env: dict[str, str]
) -> None:
    """OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT in the standard's milliseconds (k8gb's Go exporter reads them
    so): 300 gives up on a hung collector after 0.3 s. The Python SDK read seconds, so an export to a
    collector that never answers held every later span for 300 s (10000: 2.8 hours)."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings(
        tracing_enabled=True,
        otel_exporter_otlp_endpoint=f"127.0.0.1:{black_hole.port}",
        otel_exporter_otlp_protocol=protocol,
    )
    assert settings.otlp_export_timeout_s == 0.3
    handle = setup_tracing(settings, set_global=False)
    with handle.tracer().start_as_current_span("into-the-void"):
        pass
    started = time.monotonic()
    assert handle.force_flush(timeout_s=2.5), "the export still waits on the hung collector"
    assert time.monotonic() - started >= 0.25  # it did wait for the collector, that long
    assert black_hole.got_request.is_set()
    assert handle.shutdown(timeout_s=2.5)


def _python(*args: str, cwd: Path = REPO, **env: str) -> str:
    """Run a fresh interpreter (the global TracerProvider can be set once per process); its stdout."""
    result = subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), **env},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _run(script: str) -> dict[str, object]:
    return json.loads(_python("-c", textwrap.dedent(script)).strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_disabled_means_no_sdk_and_the_caller_context_passes_through() -> None:
    out = _run(
        f"""
        import json, sys
        from opentelemetry import trace
        from app.settings import Settings
        from app.telemetry import carry, http
        from app.telemetry.setup import setup_tracing
        from app.telemetry.spans import child_span

        handle = setup_tracing(Settings(tracing_enabled=False))
        caller = carry.Cause("00-{CALLER_TRACE}-{CALLER_SPAN}-01", "vendor=x", "test").context()
        with carry.tracer().start_as_current_span("Reconcile", context=caller) as span:
            recording = span.is_recording()
            annotations = carry.annotations_from_context(generation=4)
        write = carry.Cause("00-{CALLER_TRACE}-{CALLER_SPAN}-01", None, "write")
        with carry.start_reconcile_span(carry.tracer(), "Reconcile", [write], None):
            with child_span(carry.tracer(), "SaveDNSEndpoint") as step:
                onward = carry.inject_headers({{}})
                step_recording = step.is_recording()
        with carry.start_reconcile_span(carry.tracer(), "Reconcile", [], "resync"):
            resync_onward = carry.inject_headers({{}})
        print(json.dumps({{
            "onward": onward,
            "step_recording": step_recording,
            "resync_onward": resync_onward,
            "enabled": handle.enabled,
            "sdk_modules": sorted(m for m in sys.modules if m.startswith("opentelemetry.sdk")),
            "provider": type(trace.get_tracer_provider()).__name__,
            "recording": recording,
            "annotations": annotations,
        }}))
        """
    )
    assert out["enabled"] is False
    assert out["sdk_modules"] == []
    assert out["provider"] == "ProxyTracerProvider"
    assert out["recording"] is False
    # A reconcile passes its caller's context on unchanged (nothing recorded); a resync passes none.
    assert out["onward"] == {"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"}
    assert out["step_recording"] is False and out["resync_onward"] == {}
    assert out["annotations"] == {
        "k8gb.io/traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01",
        "k8gb.io/tracestate": "vendor=x",
        "k8gb.io/traceparent-generation": "4",
    }


def test_a_process_that_exits_without_shutdown_still_exports(otlp_receiver: OtlpHttpReceiver) -> None:
    """The exit hook flushes what the process recorded: at interpreter exit no thread can start, so
    the bounded shutdown runs in place instead of failing with a traceback."""
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                from app.settings import Settings
                from app.telemetry.setup import setup_tracing

                handle = setup_tracing(
                    Settings(tracing_enabled=True, otel_exporter_otlp_endpoint="{otlp_receiver.host_port}")
                )
                with handle.tracer("pygslb.test").start_as_current_span("last-words"):
                    pass
                """
            ),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    (span,) = otlp_receiver.spans_named("last-words")
    assert span.scope_name == "pygslb.test"


def test_enabled_installs_the_sdk_provider_globally() -> None:
    out = _run(
        """
        import json
        from opentelemetry import trace
        from app.settings import Settings
        from app.telemetry.setup import setup_tracing

        handle = setup_tracing(Settings(tracing_enabled=True, otel_exporter_otlp_endpoint="127.0.0.1:9"))
        provider = trace.get_tracer_provider()
        print(json.dumps({
            "same": provider is handle.provider,
            "provider": type(provider).__module__ + "." + type(provider).__name__,
            "sampler": provider.sampler.get_description(),
            "shutdown": handle.shutdown(timeout_s=2),
        }))
        """
    )
    assert out["same"] is True
    assert out["provider"] == "opentelemetry.sdk.trace.TracerProvider"
    assert str(out["sampler"]).startswith("ParentBased{root:AlwaysOnSampler")


def test_global_fixture_serves_module_level_tracers(tmp_path: Path) -> None:
    """Code that holds a module-level tracer (taken before any provider exists, as the controller does)
    exports through the session-wide provider of `global_otlp_receiver`."""
    (tmp_path / "test_global.py").write_text(
        textwrap.dedent(
            """
            from opentelemetry import trace
            from tests.support.otlp import global_otlp_receiver  # noqa: F401

            tracer = trace.get_tracer("pygslb.controller")  # a proxy, bound on first use

            async def test_exports(global_otlp_receiver):
                with tracer.start_as_current_span("Reconcile") as span:
                    trace_id = span.get_span_context().trace_id
                spans = await global_otlp_receiver.wait_for(lambda _: global_otlp_receiver.by_trace(trace_id))
                assert [s.name for s in spans] == ["Reconcile"]
            """
        )
    )
    args = ("-m", "pytest", "-q", "-ppytest_asyncio.plugin", "-pno:cacheprovider", "-oasyncio_mode=auto", ".")
    out = _python(*args, cwd=tmp_path, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    assert "1 passed" in out


async def test_async_shutdown_flushes_off_the_loop(otlp_receiver: OtlpHttpReceiver) -> None:
    handle = setup_tracing(settings_for(otlp_receiver), set_global=False)
    with handle.tracer().start_as_current_span("last words"):
        pass
    assert await handle.ashutdown(timeout_s=5)
    assert [s.name for s in otlp_receiver.spans] == ["last words"]
    assert await handle.ashutdown(timeout_s=5)  # twice is harmless


def test_the_span_pipeline_is_counted_but_not_every_span(
    otlp_receiver: OtlpHttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK's metrics switch turns on the exporter's and batch processor's counts (per batch) and the
    tracers' (per span started and ended, a tenth of a span's cost): only the first are turned on, and
    the switch is left as the operator set it (unset)."""
    monkeypatch.delenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", raising=False)
    registry = CollectorRegistry()
    handle = setup_tracing(settings_for(otlp_receiver), set_global=False, registry=registry)
    try:
        with handle.tracer("pygslb.test").start_as_current_span("counted"):
            pass
        assert handle.force_flush()
        text = generate_latest(registry).decode()
    finally:
        handle.shutdown()
    assert "OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED" not in os.environ
    assert "otel_sdk_processor_span_processed_total" in text
    assert "otel_sdk_exporter_span_exported_total" in text
    assert "otel_sdk_span_started" not in text and "otel_sdk_span_live" not in text


def test_the_resource_hashed_once_is_the_resource_it_stands_for() -> None:
    """The encoder groups spans by resource: the resource that caches its hash must hash and compare
    as the plain one with the same attributes does."""
    from opentelemetry.sdk.resources import Resource

    from app.telemetry._sdk import resource

    cached = resource("pygslb")
    plain = Resource(dict(cached.attributes), cached.schema_url)
    assert hash(cached) == hash(plain) and cached == plain
    assert {cached: 1}[plain] == 1
