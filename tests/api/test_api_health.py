"""Probes, metrics and discovery."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from app.domain.gslb import GROUP, LEGACY_GROUP
from tests.support.api_server import Api, ServeFactory


async def test_healthz(api: Api) -> None:
    response = await api.client.get("/healthz")
    assert (response.status_code, response.text) == (200, "ok")


async def test_readyz_follows_the_ready_callback(serve: ServeFactory) -> None:
    state = {"ready": False}
    api = await serve(ready=lambda: state["ready"])
    assert (await api.client.get("/readyz")).status_code == 503
    state["ready"] = True
    response = await api.client.get("/readyz")
    assert (response.status_code, response.text) == (200, "ok")


async def test_metrics_of_the_given_registry(serve: ServeFactory) -> None:
    registry = CollectorRegistry()
    counter = Counter(
        "k8gb_gslb_reconciliation_loops_total", "loops", ["namespace", "name"], registry=registry
    )
    counter.labels("test-gslb", "app").inc(3)
    api = await serve(registry=registry)
    response = await api.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert 'k8gb_gslb_reconciliation_loops_total{name="app",namespace="test-gslb"} 3.0' in response.text
    assert "python_info" not in response.text  # only the given registry


async def test_metrics_default_registry(api: Api) -> None:
    response = await api.client.get("/metrics")
    assert response.status_code == 200 and "python_info" in response.text


async def test_discovery(api: Api) -> None:
    groups = (await api.client.get("/apis")).json()
    assert groups["kind"] == "APIGroupList"
    assert [g["name"] for g in groups["groups"]] == [GROUP, LEGACY_GROUP]
    for group in (GROUP, LEGACY_GROUP):
        resources = (await api.client.get(f"/apis/{group}/v1beta1")).json()
        assert resources["groupVersion"] == f"{group}/v1beta1"
        assert [r["name"] for r in resources["resources"]] == ["gslbs", "gslbs/status"]
