"""Value sets covering every option of the chart; each must render, lint clean and validate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

OTEL_CONFIG: dict[str, Any] = {
    "receivers": {"otlp": {"protocols": {"http": {"endpoint": "0.0.0.0:4318"}}}},
    "processors": {"batch": {}},
    "exporters": {"otlphttp": {"endpoint": "https://tempo.monitoring:4318"}},
    "service": {
        "pipelines": {"traces": {"receivers": ["otlp"], "processors": ["batch"], "exporters": ["otlphttp"]}}
    },
}

SCENARIOS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "tracing-sidecar": {"tracing": {"enabled": True}},
    "tracing-jaeger": {"tracing": {"enabled": True, "deployJaeger": True, "samplingRatio": "0.25"}},
    "tracing-otel-config": {"tracing": {"enabled": True, "otelConfig": OTEL_CONFIG, "samplingRatio": 0.5}},
    "tracing-custom-architecture": {
        "tracing": {"enabled": True, "sidecar": False, "endpoint": "otel-collector.monitoring:4318"}
    },
    "tracing-images": {
        "tracing": {
            "enabled": True,
            "deployJaeger": True,
            "sidecarImage": {
                "repository": "registry.local/otelcol",
                "tag": "1.2.3",
                "pullPolicy": "IfNotPresent",
            },
            "jaegerImage": {"repository": "registry.local/jaeger", "tag": "9.9.9", "pullPolicy": "Never"},
        }
    },
    "replicas": {"pygslb": {"replicas": 3}},
    "dns-disabled": {"pygslb": {"dns": {"enabled": False}}},
    "dns-loadbalancer": {
        "pygslb": {
            "dns": {"service": {"type": "LoadBalancer", "annotations": {"example.com/lb": "internal"}}},
            "api": {"port": 9000, "service": {"port": 80}},
        }
    },
    "infoblox": {"infoblox": {"enabled": True, "gridHost": "grid.example.com", "wapiPort": 8443}},
    "rfc2136": {
        "rfc2136": {
            "enabled": True,
            "host": "10.0.0.53:53",
            "tsigKeyName": "gslb-key",
            "tsigSecretRef": {"name": "edge-tsig", "key": "secret"},
        }
    },
    "monitoring": {
        "k8gb": {"exposeMetrics": True, "serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}}
    },
    "existing-token": {"pygslb": {"apiToken": {"secretRef": {"name": "my-token", "key": "api"}}}},
    "insecure": {"pygslb": {"apiToken": {"insecure": True}}},
    "pdb-percent": {"podDisruptionBudget": {"maxUnavailable": "50%"}},
    "no-pdb-no-rbac": {"podDisruptionBudget": {"enabled": False}, "rbac": {"create": False}},
    "k8gb-settings": {
        "k8gb": {
            "clusterGeoTag": "us-east-1",
            "extGslbClustersGeoTags": "eu-west-1,us-east-1,za",
            "edgeDNSServers": ["10.0.0.53", "dns.example.com:5353"],
            "dnsZones": [
                {"parentZone": "example.com", "loadBalancedZone": "cloud.example.com", "dnsZoneNegTTL": 60},
                {"parentZone": "example.org.", "loadBalancedZone": "gslb.example.org."},
            ],
            "reconcileRequeueSeconds": 10,
            "zoneDelegationReconcileRequeueSeconds": 60,
            "nsRecordTTL": 120,
            "glueAPrefix": "ns-",
            "clusterExposedIPs": ["192.0.2.10", "192.0.2.11"],
            "log": {"level": "debug", "format": "json"},
            "podLabels": {"team": "net"},
            "podAnnotations": {"example.com/owner": "net"},
        },
        "pygslb": {"extraEnv": [{"name": "PEER_REFRESH_SECONDS", "value": "2"}]},
    },
    # a values file written for k8gb's chart, as it is (test_k8gb_values.py)
    "k8gb-values-file": yaml.safe_load((Path(__file__).parent / "fixtures" / "k8gb.values.yaml").read_text()),
}
