"""The Gslb model accepts what k8gb accepts and names the field of what it refuses."""

import pytest
from pydantic import ValidationError

from app.domain.gslb import Gslb, hosts_and_services, with_defaults


def manifest(**strategy):
    return {
        "apiVersion": "k8gb.io/v1beta1",
        "kind": "Gslb",
        "metadata": {"name": "test-gslb", "namespace": "test-gslb"},
        "spec": {
            "ingress": {
                "ingressClassName": "nginx",
                "rules": [
                    {
                        "host": "roundrobin.cloud.example.com",
                        "http": {
                            "paths": [
                                {
                                    "path": "/",
                                    "pathType": "Prefix",
                                    "backend": {
                                        "service": {"name": "frontend-podinfo", "port": {"name": "http"}}
                                    },
                                }
                            ]
                        },
                    }
                ],
            },
            "strategy": strategy or {"type": "roundRobin"},
        },
    }


def locs(exc: ValidationError) -> set[str]:
    return {".".join(str(p) for p in err["loc"]) for err in exc.errors()}


@pytest.mark.parametrize(
    ("strategy", "field"),
    [
        pytest.param({"type": "random"}, "spec.strategy.type", id="unknown type"),
        pytest.param(
            {"type": "failover", "weight": {"eu": 5}}, "spec.strategy", id="weight needs roundRobin"
        ),
        pytest.param(
            {"type": "roundRobin", "weight": {"eu": 1001}}, "spec.strategy.weight.eu", id="weight > 1000"
        ),
        pytest.param(
            {"type": "roundRobin", "weight": {"eu": -1}}, "spec.strategy.weight.eu", id="negative weight"
        ),
        pytest.param(
            {"type": "roundRobin", "weight": {"e u": 1}}, "spec.strategy.weight", id="bad weight key"
        ),
        pytest.param(
            {"type": "roundRobin", "dnsTtlSeconds": -1}, "spec.strategy.dnsTtlSeconds", id="negative ttl"
        ),
    ],
)
def test_invalid_strategy_names_the_field(strategy, field):
    with pytest.raises(ValidationError) as info:
        Gslb.model_validate(manifest(**strategy))
    assert any(loc.startswith(field) for loc in locs(info.value)), locs(info.value)


def test_missing_strategy_is_refused():
    doc = manifest()
    del doc["spec"]["strategy"]
    with pytest.raises(ValidationError) as info:
        Gslb.model_validate(doc)
    assert "spec.strategy" in locs(info.value)


def test_k8gb_manifest_round_trips_unchanged():
    doc = manifest(type="roundRobin", weight={"eu": 5, "us": 5}, dnsTtlSeconds=30)
    assert Gslb.model_validate(doc).wire() == doc


def test_ttl_defaults_to_30_and_is_written_back():
    gslb = with_defaults(Gslb.model_validate(manifest()))
    assert gslb.wire()["spec"]["strategy"]["dnsTtlSeconds"] == 30


def test_legacy_group_prunes_service_health_policy():
    doc = manifest()
    doc["apiVersion"] = "k8gb.absa.oss/v1beta1"
    doc["spec"]["serviceHealthPolicy"] = "All"
    assert "serviceHealthPolicy" not in Gslb.model_validate(doc).wire()["spec"]


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("UPPER", id="uppercase"),
        pytest.param("a" * 254, id="too long"),
        pytest.param("-x", id="dash"),
    ],
)
def test_names_follow_kubernetes_rules(name):
    doc = manifest()
    doc["metadata"]["name"] = name
    with pytest.raises(ValidationError) as info:
        Gslb.model_validate(doc)
    assert "metadata.name" in locs(info.value)


def test_hosts_and_services_from_embedded_ingress():
    servers = hosts_and_services(Gslb.model_validate(manifest()))
    assert [(s.host, [(r.namespace, r.name) for r in s.services]) for s in servers] == [
        ("roundrobin.cloud.example.com", [("test-gslb", "frontend-podinfo")])
    ]
