"""Prometheus metrics under k8gb's names (k8gb.md §8.1), plus pygslb's own under `pygslb_`."""

from __future__ import annotations

import platform
import sys
from collections.abc import Mapping, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from app.domain.gslb import HealthStatus, StrategyType

_NS_NAME = ["namespace", "name"]


class ControllerMetrics:
    """One instance per registry; tests pass a fresh registry to read values back."""

    def __init__(
        self, registry: CollectorRegistry, *, namespace: str = "pygslb", version: str = "0.1.0"
    ) -> None:
        self.registry = registry
        self.errors = Counter("k8gb_gslb_errors", "Gslb reconcile errors", _NS_NAME, registry=registry)
        self.loops = Counter(
            "k8gb_gslb_reconciliation_loops", "Successful Gslb reconciles", _NS_NAME, registry=registry
        )
        self.healthy_records = Gauge(
            "k8gb_gslb_healthy_records", "IPs over status.healthyRecords", _NS_NAME, registry=registry
        )
        self.healthy_local_records = Gauge(
            "k8gb_gslb_healthy_local_records",
            "Own exposed IPs present in healthy records",
            [*_NS_NAME, "geotag"],
            registry=registry,
        )
        self.service_status = Gauge(
            "k8gb_gslb_service_status_num",
            "Hosts per health status",
            [*_NS_NAME, "status"],
            registry=registry,
        )
        self.strategy_status = {
            s: Gauge(
                f"k8gb_gslb_status_count_for_{s.value.lower()}",
                f"Final targets per host health for {s.value}",
                [*_NS_NAME, "status"],
                registry=registry,
            )
            for s in StrategyType
        }
        self.endpoint_status = Gauge(
            "k8gb_endpoint_status_num",
            "Targets per published record",
            [*_NS_NAME, "dns_name"],
            registry=registry,
        )
        self.runtime_info = Gauge(
            "k8gb_runtime_info",
            "pygslb build information",
            ["namespace", "k8gb_version", "go_version", "arch", "os", "git_sha"],
            registry=registry,
        )
        self.reconcile_seconds = Histogram(
            "pygslb_reconcile_duration_seconds", "Reconcile duration", ["result"], registry=registry
        )
        self.queue_depth = Gauge("pygslb_workqueue_depth", "Keys waiting for a worker", registry=registry)
        self.provider_errors = Counter(
            "pygslb_provider_errors",
            "DNS provider failures",
            ["provider", "zone", "transient"],
            registry=registry,
        )
        self.provider_retries = Counter(
            "pygslb_provider_retries",
            "DNS provider retries after a transient failure",
            ["provider"],
            registry=registry,
        )
        self.peer_queries = Counter(
            "pygslb_peer_queries", "Queries to peer clusters", ["geotag", "result"], registry=registry
        )
        self.notifies_received = Counter(
            "pygslb_dns_notify_received", "NOTIFY messages received", registry=registry
        )
        python = f"python{sys.version_info.major}.{sys.version_info.minor}"
        self.runtime_info.labels(namespace, version, python, platform.machine(), sys.platform, "unknown").set(
            1
        )
        # k8gb initialises every series with a placeholder so dashboards have something to draw.
        self.errors.labels(namespace, "init")
        self.loops.labels(namespace, "init")
        self.healthy_records.labels(namespace, "init").set(0)
        self.endpoint_status.labels(namespace, "init", "init.example.com").set(0)

    def observe(
        self,
        namespace: str,
        name: str,
        strategy: str,
        primary: bool,
        health: Mapping[str, HealthStatus],
        records: Mapping[str, Sequence[str]],
        own_ips: Sequence[str],
        geotag: str,
    ) -> None:
        for status in HealthStatus:
            count = sum(1 for h in health.values() if h == status)
            self.service_status.labels(namespace, name, status.value).set(count)
        self.healthy_records.labels(namespace, name).set(sum(len(v) for v in records.values()))
        own = set(own_ips)
        self.healthy_local_records.labels(namespace, name, geotag).set(
            sum(1 for ips in records.values() for ip in ips if ip in own)
        )
        for host, ips in records.items():
            self.endpoint_status.labels(namespace, name, host).set(len(ips))
        try:
            gauge = self.strategy_status[StrategyType(strategy)]
        except ValueError:
            return
        for status in HealthStatus:
            label = status.value
            if strategy == StrategyType.FAILOVER:
                label += "_primary" if primary else "_secondary"
            targets = sum(len(records.get(h, ())) for h, s in health.items() if s == status)
            gauge.labels(namespace, name, label).set(targets)

    def forget(self, namespace: str, name: str) -> None:
        """Drop a deleted Gslb's series so dashboards do not show ghosts."""
        for metric in (self.healthy_records, self.errors, self.loops):
            try:
                metric.remove(namespace, name)
            except KeyError:
                pass
