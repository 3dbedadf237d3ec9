"""The seam between the reconciler and whatever knows whether a Service is ready.

Embedded mode answers from active probes (`probes.ProbeManager`); kubernetes mode will answer
from EndpointSlices. Both answer from memory: reconcile must never wait on a probe.
"""

from __future__ import annotations

from typing import Protocol

from app.domain.health import ServiceState


class HealthSource(Protocol):
    """Readiness of one Service: healthy, unhealthy, or notFound when it is not known at all."""

    def state(self, namespace: str, name: str) -> ServiceState: ...
