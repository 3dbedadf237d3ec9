"""OTLP endpoint normalisation: k8gb's `host:port` and the OpenTelemetry URL form, both protocols."""

from __future__ import annotations

import pytest

from app.telemetry.setup import otlp_endpoint

HTTP = "http/protobuf"
GRPC = "grpc"


@pytest.mark.parametrize(
    ("value", "protocol", "expected"),
    [
        # k8gb: host:port means plain http, the traces path is implied
        ("localhost:4318", HTTP, "http://localhost:4318/v1/traces"),
        ("otel-collector.k8gb:4318", HTTP, "http://otel-collector.k8gb:4318/v1/traces"),
        ("10.0.0.7:55681", HTTP, "http://10.0.0.7:55681/v1/traces"),
        ("[::1]:4318", HTTP, "http://[::1]:4318/v1/traces"),
        ("collector", HTTP, "http://collector:4318/v1/traces"),
        ("collector", GRPC, "http://collector:4317"),
        ("localhost:4317", GRPC, "http://localhost:4317"),
        ("  localhost:4318  ", HTTP, "http://localhost:4318/v1/traces"),
        # OpenTelemetry: a URL; HTTP appends /v1/traces to its path, unless the path already ends with it
        ("http://collector:4318", HTTP, "http://collector:4318/v1/traces"),
        ("http://collector:4318/", HTTP, "http://collector:4318/v1/traces"),
        ("https://otlp.example.com", HTTP, "https://otlp.example.com/v1/traces"),
        ("http://Collector.Example:4318", HTTP, "http://collector.example:4318/v1/traces"),
        ("https://otlp.example.com:443/v1/traces", HTTP, "https://otlp.example.com:443/v1/traces"),
        ("http://gateway:8080/otlp/v1/traces", HTTP, "http://gateway:8080/otlp/v1/traces"),
        ("localhost:4318/custom/traces", HTTP, "http://localhost:4318/custom/traces/v1/traces"),
        ("https://otlp-gateway.example.net/otlp", HTTP, "https://otlp-gateway.example.net/otlp/v1/traces"),
        ("https://otlp-gateway.example.net/otlp/", HTTP, "https://otlp-gateway.example.net/otlp/v1/traces"),
        # gRPC: scheme and authority only
        ("http://collector:4317", GRPC, "http://collector:4317"),
        ("https://collector:4317/ignored", GRPC, "https://collector:4317"),
        ("http://[2001:db8::1]:4317", GRPC, "http://[2001:db8::1]:4317"),
        ("https://otlp.example.com", GRPC, "https://otlp.example.com"),
    ],
)
def test_normalises(value: str, protocol: str, expected: str) -> None:
    assert otlp_endpoint(value, protocol) == expected


@pytest.mark.parametrize(
    ("value", "protocol", "reason"),
    [
        ("", HTTP, "empty"),
        ("   ", GRPC, "empty"),
        ("ftp://collector:21", HTTP, "scheme"),
        ("grpc://collector:4317", GRPC, "scheme"),
        ("http://:4318", HTTP, "no host"),
        ("collector:notaport", HTTP, "bad port"),
        ("collector:70000", HTTP, "bad port"),
        ("127.0.0.1:0", HTTP, "bad port"),
        ("127.0.0.1:", HTTP, "bad port"),
        ("http://collector:/v1/traces", HTTP, "bad port"),
        ("http://collector:4318/v1/traces?x=1", HTTP, "query"),
        ("collector:4318", "http/json", "protocol"),
    ],
)
def test_rejects_with_the_reason(value: str, protocol: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        otlp_endpoint(value, protocol)


@pytest.mark.parametrize("value", ["127.0.0.1:41801", "foo", "collector:4318/v1/traces"])
def test_the_traces_endpoint_must_be_a_url_for_http(value: str) -> None:
    """OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is used as given: `host:port` would post to `/`."""
    with pytest.raises(ValueError, match=r"must be a URL such as http://host:4318/v1/traces"):
        otlp_endpoint(value, HTTP, as_given=True)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("127.0.0.1:41801", "http://127.0.0.1:41801"), ("collector", "http://collector:4317")],
)
def test_grpc_keeps_taking_host_port_for_the_traces_endpoint(value: str, expected: str) -> None:
    assert otlp_endpoint(value, GRPC, as_given=True) == expected
