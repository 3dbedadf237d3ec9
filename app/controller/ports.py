"""What the reconcile pipeline needs from the outside world, one small protocol per step.

Embedded mode and kubernetes mode each plug their own implementations in; the pipeline in
`reconcile.py` stays the same. Implementations satisfy these structurally (no import needed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from app.domain.endpoint import Endpoint
from app.domain.gslb import Gslb, Server
from app.domain.health import ServiceState


class ServerSource(Protocol):
    """Hosts of a Gslb and the Services behind each (embedded ingress, referenced Ingress, ...)."""

    async def servers(self, gslb: Gslb) -> list[Server]: ...


class HealthSource(Protocol):
    """Readiness of one Service: active probes (embedded) or EndpointSlices (kubernetes). Never blocks."""

    def state(self, namespace: str, name: str) -> ServiceState: ...


class ExposedIpSource(Protocol):
    """The IPv4 addresses this cluster's hosts resolve to, with k8gb's precedence."""

    async def exposed_ips(self, gslb: Gslb) -> list[str]: ...


class GlueSource(Protocol):
    """The IPv4 addresses of this cluster's DNS server, as the edge's glue A should give them.

    Raises `app.domain.delegation.GlueUnknown` while they are not known (a load balancer not
    provisioned yet); kubernetes mode reads them from the cluster and kicks the delegation on change.
    """

    async def glue_ips(self) -> list[str]: ...


class RecordSink(Protocol):
    """Publishes the records of one Gslb and returns what is now published for it.

    Embedded: plan against the built-in zone and apply. Kubernetes: write the application DNSEndpoint.
    `withdraw` is told the deleted Gslb's uid, None when the delete orphans its dependents or when it is
    not known which Gslb it was: kubernetes mode deletes only a DNSEndpoint that this uid still controls.
    """

    async def publish(self, gslb: Gslb, endpoints: Sequence[Endpoint]) -> list[Endpoint]: ...

    async def withdraw(self, namespace: str, name: str, group: str, uid: str | None) -> None: ...


class PeerAnswerLike(Protocol):
    @property
    def geo_tag(self) -> str: ...

    @property
    def targets(self) -> list[str]: ...

    @property
    def error(self) -> str | None: ...


class PeerSource(Protocol):
    """Other clusters' healthy targets for a host (their `localtargets-<host>`), keyed by geo tag."""

    async def localtargets(self, host: str) -> Mapping[str, PeerAnswerLike]: ...

    def forget(self, host: str) -> None:
        """No Gslb serves `host` any more: drop what is kept about it."""
        ...


class Notifier(Protocol):
    """Tells peers that this cluster's local targets for some names changed (DNS NOTIFY)."""

    async def notify(self, names: Sequence[str]) -> None: ...


class LegacyMigrator(Protocol):
    """k8gb's legacy-gslb-migrator (app/domain/migration.py), for `k8gb.absa.oss` Gslbs only.

    `migrate` sees every live legacy Gslb before the legacy runtime does (which then leaves one labelled
    for migration alone); `release` sees one being deleted, before its records are withdrawn: what
    the migration holds on it (a finalizer, owner references) goes. Both are safe to repeat: each step
    checks what is already done, so a crash half-way is finished by the next try.
    """

    async def migrate(self, legacy: Gslb) -> None: ...

    async def release(self, legacy: Gslb) -> None: ...
