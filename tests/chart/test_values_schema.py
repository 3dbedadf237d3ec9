"""values.schema.json refuses wrong values with Helm's own message naming the key and the rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml

from tests.chart.scenarios import SCENARIOS
from tests.support import chart as helm

FIXTURES = Path(__file__).parent / "fixtures"


def _refusal(values: dict[str, Any]) -> str:
    with pytest.raises(helm_python.HelmValuesError) as caught:
        helm.render(values)
    return str(caught.value)


def test_schema_is_draft_07_and_strict_about_unknown_keys() -> None:
    schema = helm.chart().schema
    assert schema is not None
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert schema["additionalProperties"] is False


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_scenario_passes_the_schema(name: str) -> None:
    helm.chart().validate_schema(SCENARIOS[name])


def test_a_values_file_with_wrong_types_fails_with_every_mistake_named() -> None:
    values = yaml.safe_load((FIXTURES / "wrong-types.values.yaml").read_text())
    message = _refusal(values)
    assert "values don't meet the specifications of the schema" in message
    assert "at '/k8gb/clusterGeoTag': got number, want string" in message
    assert "at '/k8gb/reconcileRequeueSeconds': got string, want integer" in message
    assert "at '/tracing/enabled': got string, want boolean" in message
    # helm lint reports the same, as an error
    report = helm_python.lint(helm.CHART_DIR, values, strict=True)
    assert any("at '/tracing/enabled': got string, want boolean" in error for error in report["errors"])


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            {"k8gb": {"clusterGeoTag": "eu west"}},
            "at '/k8gb/clusterGeoTag': 'eu west' does not match pattern",
        ),
        (
            {"k8gb": {"extGslbClustersGeoTags": ["eu", "us"]}},
            "at '/k8gb/extGslbClustersGeoTags': got array, want string",
        ),
        ({"k8gb": {"edgeDNSServers": "1.1.1.1"}}, "at '/k8gb/edgeDNSServers': got string, want array"),
        (
            {"k8gb": {"dnsZones": [{"parentZone": "example.com"}]}},
            "at '/k8gb/dnsZones/0': missing property 'loadBalancedZone'",
        ),
        ({"k8gb": {"dnsZones": []}}, "at '/k8gb/dnsZones': minItems: got 0, want 1"),
        (
            {
                "k8gb": {
                    "dnsZones": [
                        {
                            "parentZone": "example.com",
                            "loadBalancedZone": "c.example.com",
                            "dnsZoneNegTTL": -1,
                        }
                    ]
                }
            },
            "at '/k8gb/dnsZones/0/dnsZoneNegTTL': minimum: got -1, want 0",
        ),
        (
            {"k8gb": {"clusterExposedIPs": ["10.0.0.300"]}},
            "at '/k8gb/clusterExposedIPs/0': '10.0.0.300' does not match",
        ),
        (
            {"pygslb": {"dns": {"exposedIPs": ["lb.example.com"]}}},
            "at '/pygslb/dns/exposedIPs/0': 'lb.example.com' does not match",
        ),
        ({"k8gb": {"nsRecordTTL": 0}}, "at '/k8gb/nsRecordTTL': minimum: got 0, want 1"),
        ({"k8gb": {"log": {"level": "verbose"}}}, "at '/k8gb/log/level': value must be one of"),
        (
            {"k8gb": {"edgeDNSServers": ["1.1.1.1:99999"]}},
            "at '/k8gb/edgeDNSServers/0': '1.1.1.1:99999' does not match pattern",
        ),
        (
            {"k8gb": {"edgeDNSServers": ["dns.example.com:abc"]}},
            "at '/k8gb/edgeDNSServers/0': 'dns.example.com:abc' does not match pattern",
        ),
        ({"k8gb": {"glueAPrefix": "-ns-"}}, "at '/k8gb/glueAPrefix': '-ns-' does not match pattern"),
        (
            {"tracing": {"endpoint": "collector:99999"}},
            "at '/tracing/endpoint': 'collector:99999' does not match pattern",
        ),
        (
            {
                "k8gb": {
                    "dnsZones": [
                        {"parentZone": "a.com", "loadBalancedZone": "b.a.com", "dnsZoneNegTTL": "3s"}
                    ]
                }
            },
            "at '/k8gb/dnsZones/0/dnsZoneNegTTL': '3s' does not match pattern",
        ),
        ({"coredns": {"serviceType": "Headless"}}, "at '/coredns/serviceType': value must be one of"),
        ({"extdns": {"enabled": "yes"}}, "at '/extdns/enabled': got string, want boolean"),
        ({"k8gb": {"nsRecordTTL": 2**31}}, "at '/k8gb/nsRecordTTL': maximum: got 2.147483648"),
        ({"pygslb": {"api": {"port": 70000}}}, "at '/pygslb/api/port': maximum: got 70,000, want 65,535"),
        ({"pygslb": {"replicas": 0}}, "at '/pygslb/replicas': minimum: got 0, want 1"),
        (
            {"pygslb": {"dns": {"service": {"port": "53"}}}},
            "at '/pygslb/dns/service/port': got string, want integer",
        ),
        (
            {"pygslb": {"image": {"pullPolicy": "Sometimes"}}},
            "at '/pygslb/image/pullPolicy': value must be one of",
        ),
        ({"infoblox": {"wapiPort": 0}}, "at '/infoblox/wapiPort': minimum: got 0, want 1"),
        ({"rfc2136": {"enabled": True}}, "at '/rfc2136/host': minLength: got 0, want 1"),
        ({"tracing": {"enabled": None}}, "at '/tracing': missing property 'enabled'"),
        ({"tracing": {"enable": True}}, "at '/tracing': additional properties 'enable' not allowed"),
        ({"tracing": {"sidecar": "false"}}, "at '/tracing/sidecar': got string, want boolean"),
        (
            {"tracing": {"endpoint": "http//collector"}},
            "at '/tracing/endpoint': 'http//collector' does not match pattern",
        ),
        ({"tracing": {"samplingRatio": "2"}}, "at '/tracing/samplingRatio': '2' does not match pattern"),
        ({"tracing": {"protocol": "http/json"}}, "at '/tracing/protocol': value must be one of"),
        ({"tracing": {"samplingRatio": 1.5}}, "at '/tracing/samplingRatio': maximum: got 1.5, want 1"),
        (
            {"tracing": {"samplingRatio": True}},
            "at '/tracing/samplingRatio': got boolean, want null or number or string",
        ),
        (
            {"tracing": {"otelConfig": "receivers: {}"}},
            "at '/tracing/otelConfig': got string, want null or object",
        ),
        (
            {"tracing": {"sidecarImage": {"repository": ""}}},
            "at '/tracing/sidecarImage/repository': minLength: got 0, want 1",
        ),
        (
            {"podDisruptionBudget": {"maxUnavailable": "half"}},
            "at '/podDisruptionBudget/maxUnavailable': 'half' does not match",
        ),
        (
            {"k8gb": {"serviceMonitor": {"interval": 30}}},
            "at '/k8gb/serviceMonitor/interval': got number, want string",
        ),
    ],
    ids=lambda v: "" if isinstance(v, str) else str(v)[:60],
)
def test_wrong_value_is_refused_naming_the_key(values: dict[str, Any], expected: str) -> None:
    assert expected in _refusal(values)


def test_k8gb_values_files_keep_working() -> None:
    """A k8gb-style values file (its keys under k8gb.*, infoblox.*, tracing.*) is accepted as is."""
    k8gb_values = {
        "k8gb": {
            "clusterGeoTag": "eu",
            "extGslbClustersGeoTags": "eu,us",
            "edgeDNSServers": ["1.1.1.1"],
            "dnsZones": [
                {"parentZone": "example.com", "loadBalancedZone": "cloud.example.com", "dnsZoneNegTTL": 30}
            ],
            "reconcileRequeueSeconds": 30,
            "zoneDelegationReconcileRequeueSeconds": 0,  # k8gb's min: at start only
            "nsRecordTTL": 30,
            "glueAPrefix": "gslb-ns-",
            "log": {"format": "simple", "level": "info"},
            "exposeMetrics": False,
            "serviceMonitor": {"enabled": False},
        },
        "infoblox": {"enabled": False, "gridHost": "10.0.0.1", "wapiVersion": "2.3.1", "wapiPort": 443},
        "tracing": {
            "enabled": True,
            "deployJaeger": True,
            "endpoint": "localhost:4318",
            "samplingRatio": None,
            "otelConfig": None,
            "sidecarImage": {
                "repository": "otel/opentelemetry-collector",
                "tag": "0.159.0",
                "pullPolicy": "Always",
            },
            "jaegerImage": {
                "repository": "jaegertracing/all-in-one",
                "tag": "1.76.0",
                "pullPolicy": "Always",
            },
        },
    }
    rendered = helm.render(k8gb_values)
    assert rendered.has("Deployment", "jaeger")
