"""k8gb's per-Gslb metrics as a scrape shows them: names, labels and values, and no ghosts after a delete."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from app.controller.gslb_series import GslbSample
from app.controller.metrics import ControllerMetrics
from app.domain.gslb import HealthStatus
from app.domain.health import ServiceState
from tests.support.gslb_factory import make_gslb

from .conftest import Harness

HEALTHY, UNHEALTHY = HealthStatus.HEALTHY, HealthStatus.UNHEALTHY


def scrape(metrics: ControllerMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(metrics.registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if not s.name.endswith("_created")
    }


def series_of(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str) -> dict[str, float]:
    """`metric{other labels}` -> value, for the series of one Gslb."""
    found = {}
    for (metric, labels), value in samples.items():
        label_map = dict(labels)
        if label_map.get("name") == name:
            rest = ",".join(f"{k}={v}" for k, v in labels if k not in ("name", "namespace"))
            found[f"{metric}{{{rest}}}"] = value
    return found


def test_a_reconciled_gslb_has_k8gbs_series() -> None:
    metrics = ControllerMetrics(CollectorRegistry(), namespace="k8gb")
    health = {"a.cloud.example.com": HEALTHY, "b.cloud.example.com": UNHEALTHY}
    records = {"a.cloud.example.com": ["10.0.0.1", "10.1.0.1"]}
    metrics.observe("team", "app", GslbSample.of("roundRobin", False, health, records, ["10.0.0.1"], "eu"))
    metrics.observe("team", "app", GslbSample.of("roundRobin", False, health, records, ["10.0.0.1"], "eu"))
    metrics.observe(
        "team", "standby", GslbSample.of("failover", False, {"s.cloud.example.com": HEALTHY}, {}, [], "eu")
    )
    metrics.reconcile_failed("team", "app")
    samples = scrape(metrics)
    assert series_of(samples, "app") == {
        "k8gb_gslb_reconciliation_loops_total{}": 2.0,
        "k8gb_gslb_errors_total{}": 1.0,
        "k8gb_gslb_healthy_records{}": 2.0,
        "k8gb_gslb_healthy_local_records{geotag=eu}": 1.0,
        "k8gb_gslb_service_status_num{status=Healthy}": 1.0,
        "k8gb_gslb_service_status_num{status=Unhealthy}": 1.0,
        "k8gb_gslb_service_status_num{status=NotFound}": 0.0,
        "k8gb_endpoint_status_num{dns_name=a.cloud.example.com}": 2.0,
        "k8gb_gslb_status_count_for_roundrobin{status=Healthy}": 2.0,
        "k8gb_gslb_status_count_for_roundrobin{status=Unhealthy}": 0.0,
        "k8gb_gslb_status_count_for_roundrobin{status=NotFound}": 0.0,
    }
    standby = series_of(samples, "standby")
    assert standby["k8gb_gslb_status_count_for_failover{status=Healthy_secondary}"] == 0.0
    assert "k8gb_gslb_errors_total{}" not in standby  # no error yet: no series, as prometheus_client does
    # k8gb's placeholder series, so dashboards have something to draw before the first Gslb.
    assert samples[("k8gb_gslb_healthy_records", (("name", "init"), ("namespace", "k8gb")))] == 0.0


def test_a_deleted_gslb_leaves_no_series_behind() -> None:
    metrics = ControllerMetrics(CollectorRegistry(), namespace="k8gb")
    for name in ("app", "other"):
        sample = GslbSample.of(
            "failover", True, {f"{name}.x": HEALTHY}, {f"{name}.x": ["10.0.0.1"]}, [], "eu"
        )
        metrics.observe("team", name, sample)
    metrics.reconcile_failed("team", "app")
    metrics.forget("team", "app")
    samples = scrape(metrics)
    assert series_of(samples, "app") == {}
    assert series_of(samples, "other")["k8gb_gslb_status_count_for_failover{status=Healthy_primary}"] == 1.0


async def test_every_published_record_has_its_endpoint_status_series(harness: Harness) -> None:
    """k8gb counts every endpoint of the DNSEndpoint, `localtargets-*` too, for k8gb_endpoint_status_num:
    its dashboard's "targets per dns record" panel lost those lines."""
    harness.health.states[("test-gslb", "frontend")] = ServiceState.HEALTHY
    await harness.store.create(make_gslb("app", host="app.cloud.example.com", service="frontend"))
    async with asyncio.timeout(5):
        while harness.controller.reconciles < 1 or len(harness.controller.queue):
            await asyncio.sleep(0.02)
    app = series_of(scrape(harness.metrics), "app")
    assert app["k8gb_endpoint_status_num{dns_name=app.cloud.example.com}"] == 1.0
    assert app["k8gb_endpoint_status_num{dns_name=localtargets-app.cloud.example.com}"] == 1.0
    assert app["k8gb_gslb_healthy_records{}"] == 1.0  # localtargets are no healthy record (status)
