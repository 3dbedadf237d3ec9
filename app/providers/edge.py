"""Choosing the edge-DNS provider from settings (EDGE_DNS_TYPE), wrapped for tracing and retries."""

from __future__ import annotations

import logging

from opentelemetry import trace
from prometheus_client import REGISTRY, CollectorRegistry

from app.domain.endpoint import Changes, Endpoint
from app.providers.base import Provider
from app.providers.infoblox import InfobloxProvider
from app.providers.rfc2136 import Rfc2136Provider
from app.providers.wrappers import Retrying, RetryObserver, Traced
from app.settings import Settings, split_host_port

log = logging.getLogger("pygslb.providers.edge")


class NoEdgeProvider:
    """k8gb's NoEdgeDNS: the edge zone is managed by someone else; say what would be written, hold nothing."""

    name = "none"

    def __init__(self) -> None:
        self._last: tuple[str, Changes] | None = None

    async def records(self, zone: str) -> list[Endpoint]:
        return []

    async def apply(self, zone: str, changes: Changes) -> None:
        level = logging.DEBUG if self._last == (zone, changes) else logging.INFO
        self._last = (zone, changes)
        wanted = ", ".join(f"{e.dns_name} {e.record_type} {list(e.targets)}" for e in changes.create)
        log.log(level, "EDGE_DNS_TYPE=none: %s should hold %s", zone, wanted or "nothing new")

    def adjust(self, endpoints: list[Endpoint]) -> list[Endpoint]:
        return endpoints


def build_edge_provider(
    settings: Settings,
    *,
    registry: CollectorRegistry = REGISTRY,
    tracer_provider: trace.TracerProvider | None = None,
    observer: RetryObserver | None = None,
    attempts: int = 4,
) -> Provider:
    """The provider named by EDGE_DNS_TYPE, as `Retrying(Traced(provider))`; Settings has checked that
    the provider's settings are complete."""
    kind = settings.edge_dns_type
    inner: Provider
    if kind == "none":
        return NoEdgeProvider()
    if kind == "rfc2136":
        host, port = split_host_port(settings.rfc2136_host, 53)
        secret = settings.rfc2136_tsig_secret.get_secret_value() if settings.rfc2136_tsig_secret else ""
        inner = Rfc2136Provider(
            host,
            port,
            settings.rfc2136_tsig_keyname,
            secret,
            settings.rfc2136_tsig_algorithm,
            timeout=settings.rfc2136_timeout,
        )
    elif kind == "infoblox":
        assert settings.infoblox_wapi_password is not None  # Settings refuses Infoblox without one
        host = settings.infoblox_grid_host
        host = f"[{host}]" if ":" in host else host
        inner = InfobloxProvider(
            f"{settings.infoblox_scheme}://{host}:{settings.infoblox_wapi_port}",
            settings.infoblox_wapi_username,
            settings.infoblox_wapi_password.get_secret_value(),
            wapi_version=settings.infoblox_wapi_version,
            view=settings.infoblox_dns_view,
            ttl=settings.ns_record_ttl,
            timeout=settings.infoblox_http_request_timeout,
            verify_tls=settings.infoblox_ssl_verify,
            zones=[z.load_balanced_zone for z in settings.zones],
            registry=registry,
        )
    else:
        raise ValueError(f"unknown EDGE_DNS_TYPE {kind!r}")
    return Retrying(Traced(inner, tracer_provider), attempts=attempts, observer=observer)
