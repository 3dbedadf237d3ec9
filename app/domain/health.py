"""k8gb's health rules (k8gb.md §6): per-service verdicts combined into one per host."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from app.domain.gslb import HealthStatus, ServiceHealthPolicy


class ServiceState(StrEnum):
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    NOT_FOUND = "notFound"


def host_health(states: Iterable[ServiceState], policy: ServiceHealthPolicy | None) -> HealthStatus:
    """Any (default): one healthy service is enough. All: every service must be healthy."""
    seen = list(states)
    if not seen:
        return HealthStatus.NOT_FOUND
    if policy == ServiceHealthPolicy.ALL:
        if ServiceState.NOT_FOUND in seen:
            return HealthStatus.NOT_FOUND
        if ServiceState.UNHEALTHY in seen:
            return HealthStatus.UNHEALTHY
        return HealthStatus.HEALTHY
    if ServiceState.HEALTHY in seen:
        return HealthStatus.HEALTHY
    if ServiceState.UNHEALTHY in seen:
        return HealthStatus.UNHEALTHY
    return HealthStatus.NOT_FOUND
