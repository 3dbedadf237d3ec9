"""Prometheus metrics under k8gb's names (k8gb.md §8.1), plus pygslb's own under `pygslb_`."""

from __future__ import annotations

import platform
import sys

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from app.controller.gslb_series import GslbSample, GslbSeries


class ControllerMetrics:
    """One instance per registry; tests pass a fresh registry to read values back."""

    def __init__(
        self, registry: CollectorRegistry, *, namespace: str = "pygslb", version: str = "0.1.0"
    ) -> None:
        self.registry = registry
        self.gslbs = GslbSeries(namespace)  # k8gb's per-Gslb series, rendered at scrape time
        registry.register(self.gslbs)
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

    def observe(self, namespace: str, name: str, sample: GslbSample) -> None:
        """What a successful reconcile of one Gslb found: its gauges and one more loop."""
        self.gslbs.observe(namespace, name, sample)
        self.gslbs.count_loop(namespace, name)

    def reconcile_failed(self, namespace: str, name: str) -> None:
        self.gslbs.count_error(namespace, name)

    def forget(self, namespace: str, name: str) -> None:
        """Drop a deleted Gslb's series so dashboards do not show ghosts."""
        self.gslbs.forget(namespace, name)
