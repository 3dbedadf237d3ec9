"""k8gb's per-Gslb metrics (k8gb.md §8.1) as one collector that renders its series at scrape time.

Why not a prometheus_client Gauge per family: every label set is a child object with its own lock,
about ten per Gslb, 6.4 KB each Gslb in all (64 MB at 10,000 Gslbs), and the `.labels()` calls
took 28 µs per reconcile (85 µs the first time). Here a reconcile stores one immutable record per
Gslb and a scrape turns the records into families; `forget` drops every series of a deleted Gslb at
once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from app.domain.gslb import HealthStatus, StrategyType

Key = tuple[str, str]  # namespace, name
_STATUSES = tuple(HealthStatus)
_STRATEGIES = frozenset(s.value for s in StrategyType)


@dataclass(frozen=True, slots=True)
class GslbSample:
    """What one reconcile of a Gslb reports; every field is one family's series for it."""

    service_status: tuple[int, ...]  # hosts per HealthStatus, in _STATUSES order
    healthy_records: int
    geotag: str
    healthy_local_records: int
    endpoint_status: tuple[tuple[str, int], ...]  # (dns_name, targets)
    strategy: str | None  # StrategyType value, or None when not a known strategy
    strategy_status: tuple[tuple[str, int], ...]  # (status label, targets)

    @classmethod
    def of(
        cls,
        strategy: str,
        primary: bool,
        health: Mapping[str, HealthStatus],
        records: Mapping[str, Sequence[str]],
        own_ips: Sequence[str],
        geotag: str,
        published: Sequence[tuple[str, int]] | None = None,
    ) -> GslbSample:
        """`published`: (dns name, targets) of every record written, `localtargets-*` too, as k8gb counts
        them for k8gb_endpoint_status_num (the DNSEndpoint's endpoints); by default the healthy records."""
        own = set(own_ips)
        known = strategy if strategy in _STRATEGIES else None
        by_status: list[tuple[str, int]] = []
        if known is not None:
            for status in _STATUSES:
                label = status.value
                if known == StrategyType.FAILOVER:
                    label += "_primary" if primary else "_secondary"
                targets = sum(len(records.get(h, ())) for h, s in health.items() if s == status)
                by_status.append((label, targets))
        return cls(
            service_status=tuple(sum(1 for h in health.values() if h == s) for s in _STATUSES),
            healthy_records=sum(len(v) for v in records.values()),
            geotag=geotag,
            healthy_local_records=sum(1 for ips in records.values() for ip in ips if ip in own),
            endpoint_status=(
                tuple(published)
                if published is not None
                else tuple((host, len(ips)) for host, ips in records.items())
            ),
            strategy=known,
            strategy_status=tuple(by_status),
        )


_NS_NAME = ["namespace", "name"]


class GslbSeries(Collector):
    """The per-Gslb gauges and counters of k8gb; register once per registry."""

    def __init__(self, namespace: str) -> None:
        self._samples: dict[Key, GslbSample] = {}
        self._loops: dict[Key, tuple[int, float]] = {}  # count, created
        self._errors: dict[Key, tuple[int, float]] = {}
        # k8gb initialises series with a placeholder so dashboards have something to draw.
        placeholder = (namespace, "init")
        self._loops[placeholder] = self._errors[placeholder] = (0, time.time())
        self._samples[placeholder] = GslbSample((0, 0, 0), 0, "", 0, (("init.example.com", 0),), None, ())
        self._placeholder = placeholder

    # --- writes (the event loop) -------------------------------------------------------------------

    def observe(self, namespace: str, name: str, sample: GslbSample) -> None:
        self._samples[(namespace, name)] = sample

    def count_loop(self, namespace: str, name: str) -> None:
        _inc(self._loops, (namespace, name))

    def count_error(self, namespace: str, name: str) -> None:
        _inc(self._errors, (namespace, name))

    def forget(self, namespace: str, name: str) -> None:
        """Drop every series of a deleted Gslb, so dashboards do not show ghosts."""
        for series in (self._samples, self._loops, self._errors):
            series.pop((namespace, name), None)

    # --- reads (a scrape, possibly on another thread) -----------------------------------------------

    def describe(self) -> Iterator[Metric]:
        *families, by_strategy = self._families()
        yield from families
        yield from by_strategy.values()

    def collect(self) -> Iterator[Metric]:
        # Copies are atomic under the GIL, and samples are immutable: a scrape on another thread
        # sees each Gslb either before or after a reconcile, never half-way.
        samples, loops, errors = self._samples.copy(), self._loops.copy(), self._errors.copy()
        (
            errors_f,
            loops_f,
            healthy_f,
            local_f,
            status_f,
            endpoint_f,
            strategy_f,
        ) = families = self._families()
        # No `_created` samples: k8gb's Go client has none (doubled series for nothing on a dashboard).
        for key, (count, _) in errors.items():
            errors_f.add_metric(list(key), count)
        for key, (count, _) in loops.items():
            loops_f.add_metric(list(key), count)
        for (namespace, name), s in samples.items():
            healthy_f.add_metric([namespace, name], s.healthy_records)
            if (namespace, name) == self._placeholder:
                for dns_name, targets in s.endpoint_status:
                    endpoint_f.add_metric([namespace, name, dns_name], targets)
                continue
            local_f.add_metric([namespace, name, s.geotag], s.healthy_local_records)
            for status, hosts in zip(_STATUSES, s.service_status, strict=True):
                status_f.add_metric([namespace, name, status.value], hosts)
            for dns_name, targets in s.endpoint_status:
                endpoint_f.add_metric([namespace, name, dns_name], targets)
            if s.strategy is not None:
                for label, targets in s.strategy_status:
                    strategy_f[s.strategy].add_metric([namespace, name, label], targets)
        yield from families[:6]
        yield from strategy_f.values()

    @staticmethod
    def _families() -> tuple[
        CounterMetricFamily,
        CounterMetricFamily,
        GaugeMetricFamily,
        GaugeMetricFamily,
        GaugeMetricFamily,
        GaugeMetricFamily,
        dict[str, GaugeMetricFamily],
    ]:
        return (
            CounterMetricFamily("k8gb_gslb_errors", "Gslb reconcile errors", labels=_NS_NAME),
            CounterMetricFamily(
                "k8gb_gslb_reconciliation_loops", "Successful Gslb reconciles", labels=_NS_NAME
            ),
            GaugeMetricFamily("k8gb_gslb_healthy_records", "IPs over status.healthyRecords", labels=_NS_NAME),
            GaugeMetricFamily(
                "k8gb_gslb_healthy_local_records",
                "Own exposed IPs present in healthy records",
                labels=[*_NS_NAME, "geotag"],
            ),
            GaugeMetricFamily(
                "k8gb_gslb_service_status_num", "Hosts per health status", labels=[*_NS_NAME, "status"]
            ),
            GaugeMetricFamily(
                "k8gb_endpoint_status_num", "Targets per published record", labels=[*_NS_NAME, "dns_name"]
            ),
            {
                s.value: GaugeMetricFamily(
                    f"k8gb_gslb_status_count_for_{s.value.lower()}",
                    f"Final targets per host health for {s.value}",
                    labels=[*_NS_NAME, "status"],
                )
                for s in StrategyType
            },
        )


def _inc(series: dict[Key, tuple[int, float]], key: Key) -> None:
    count, created = series.get(key, (0, 0.0))
    series[key] = (count + 1, created or time.time())
