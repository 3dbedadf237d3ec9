"""One settings root: every field's environment name, default, bounds and help in one place.

Names follow k8gb's environment variables where k8gb has one (k8gb.md §3); the pygslb-only ones are
API_ADDRESS, DNS_ADDRESS, DNS_WORKERS, DNS_EXPOSED_IPS, DNS_SERVICE_NAME, GSLB_*,
PEER_REFRESH_SECONDS and GEOIP_*. Secrets may come from a file (`<NAME>_FILE`) so they never have to
appear on a command line.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.domain.gslb import GEOTAG_RE
from app.domain.locations import parse_geo_cidrs
from app.domain.zones import MAX_TTL, ZoneConfig, parse_dns_zones, valid_name
from app.otlp import EXPORT_TIMEOUT_S, batch_limits, check_propagators, timeout_ms

#: An OTLP export timeout below this many milliseconds was most likely meant in seconds.
_SHORT_EXPORT_TIMEOUT_MS = 100
GEOTAG = GEOTAG_RE  # k8gb's rule for geo tags, one copy of it
_GLUE_PREFIX = re.compile(r"^([a-zA-Z\d][a-zA-Z\d-]*)?$")
_SERVICE_NAME = re.compile(r"[a-z]([a-z\d-]{0,61}[a-z\d])?")  # RFC 1035 label, as Service names are

CsvList = Annotated[list[str], NoDecode]

#: k8gb's rule for an edge server's host name (go-playground's hostname_rfc1123): labels of letters,
#: digits and '-', not starting with '-', no trailing dot.
_HOSTNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,62}(\.[A-Za-z0-9][A-Za-z0-9-]{0,62})*")
_DOTTED_NUMBERS = re.compile(r"[\d.]+")


def split_host_port(value: str, default_port: int) -> tuple[str, int]:
    """`host`, `host:port`, `[v6]:port`; k8gb's edge server syntax. ValueError for a port that is not
    one (the socket layer would otherwise take 99999 modulo 65536 and listen somewhere else)."""
    value = value.strip()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port_text = rest.lstrip(":")
    elif value.count(":") == 1:
        host, port_text = value.split(":")
    else:
        host, port_text = value, ""
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"{value!r}: the port must be a number from 0 to 65535")
    return host, int(port_text)


def edge_server(entry: str) -> tuple[str, int]:
    """One EDGE_DNS_SERVERS entry as k8gb accepts it: an IPv4 address or an RFC 1123 host name, with an
    optional `:port` from 1 to 65535 (53 without). ValueError naming the entry for anything else: k8gb
    refuses it at start too, where pygslb used to drop IPv6 or a URL silently (and peer discovery with it)."""
    host, _, port_text = entry.rpartition(":") if ":" in entry else (entry, "", "")
    if ":" in host or "[" in entry or "/" in entry:
        raise ValueError(
            f"{entry!r}: IPv6 addresses and URLs are not supported; give an IPv4 address or a host name, "
            "optionally with :port"
        )
    if port_text or ":" in entry:
        if not (port_text.isascii() and port_text.isdigit() and 1 <= int(port_text) <= 65535):
            raise ValueError(f"{entry!r}: the port must be a number from 1 to 65535")
    if not host:
        raise ValueError(f"{entry!r}: the host is missing")
    if _DOTTED_NUMBERS.fullmatch(host):  # a typo'd address, which k8gb would take for a host name
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise ValueError(f"{entry!r}: {host} is not an IPv4 address") from None
    elif not _HOSTNAME.fullmatch(host):
        raise ValueError(
            f"{entry!r}: not an IPv4 address or a host name (labels of letters, digits and '-', "
            "not starting with '-')"
        )
    return host, int(port_text) if port_text else 53


def _csv(value: object) -> object:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="", case_sensitive=False, extra="ignore", populate_by_name=True
    )

    # --- pygslb process -------------------------------------------------------------------------
    gslb_mode: Literal["embedded", "kubernetes"] = Field(
        "embedded", description="embedded (SQLite) or kubernetes (CRs)"
    )
    api_address: str = Field(
        "127.0.0.1:8080", description="host:port of the REST API, /metrics and Swagger UI"
    )
    dns_address: str = Field(
        "127.0.0.1:5353", description="host:port of the built-in DNS server (UDP+TCP); empty disables it"
    )
    dns_workers: int = Field(
        1,
        ge=0,
        le=64,
        description="DNS server processes sharing DNS_ADDRESS (SO_REUSEPORT when more than one), fed the "
        "zone by the main process, so DNS load runs beside reconciles; 0 serves DNS in the main process",
    )
    gslb_data_dir: Path = Field(Path(".gslb-data"), description="where the embedded SQLite store lives")
    gslb_services_file: Path | None = Field(
        None, description="YAML file declaring services, endpoints and probes; SIGHUP reads it again"
    )
    gslb_api_token: SecretStr | None = Field(
        None, description="bearer token required for writes (or GSLB_API_TOKEN_FILE)"
    )
    gslb_api_token_file: Path | None = Field(None, description="file holding the API token")
    gslb_insecure: bool = Field(False, description="allow a non-loopback API address without a token")
    gslb_tls_cert_file: Path | None = Field(None, description="PEM certificate: serve the API over HTTPS")
    gslb_tls_key_file: Path | None = Field(None, description="PEM private key for GSLB_TLS_CERT_FILE")
    gslb_max_body_bytes: int = Field(1_048_576, ge=1024, description="request body size limit (413 above)")
    gslb_api_header_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=3600,
        description="seconds a client has to send a request's line and headers (counted from the "
        "connection, or from the first byte after a keep-alive pause); then 408 and closed, or just "
        "closed if nothing came",
    )
    gslb_api_max_connections: int = Field(
        1024,
        ge=1,
        description="open API connections at most (never more than half the open-files limit); a new one "
        "beyond it closes the longest-waiting connection with no request in progress of the client "
        "address holding the most, else is closed itself",
    )
    gslb_api_token_reviews_per_second: float = Field(
        20.0,
        gt=0,
        description="kubernetes mode: TokenReviews at most per second (and in a burst) for bearer tokens "
        "not reviewed in the last 10 s; beyond it 429 with Retry-After, as the API server's "
        "priority and fairness answers",
    )
    gslb_leader_election: bool = Field(
        False, description="kubernetes mode: elect one reconciling replica via a Lease"
    )
    pod_namespace: str = Field(
        "k8gb", description="kubernetes mode: namespace of the controller (leases, events)"
    )
    reconcile_workers: int = Field(16, ge=1, le=256, description="Gslbs reconciled in parallel")
    gslb_reconcile: bool = Field(True, description="run the reconciler; false serves the API and DNS only")

    # --- k8gb's settings --------------------------------------------------------------------------
    cluster_geo_tag: str = Field("eu", description="this cluster's geo tag")
    ext_gslb_clusters_geo_tags: CsvList = Field(
        default_factory=list, description="the other clusters' geo tags"
    )
    edge_dns_servers: CsvList = Field(
        default_factory=list,
        description="edge DNS servers, unique: IPv4 address or host name, optionally :port (1-65535, "
        "default 53); no IPv6",
    )
    edge_dns_server: str = Field(
        "",
        description="deprecated (k8gb): the edge server when EDGE_DNS_SERVERS is empty; use EDGE_DNS_SERVERS",
    )
    edge_dns_server_port: int = Field(
        53, ge=1, le=65535, description="deprecated (k8gb): EDGE_DNS_SERVER's port; use EDGE_DNS_SERVERS"
    )
    dns_zones: str = Field(
        "example.com:cloud.example.com:30",
        description=f"parent:loadBalancedZone:negTTL;... (negTTL 0-{MAX_TTL})",
    )
    dns_zone: str = Field(
        "", description="k8gb <= 0.14's load-balanced zone: refused, write DNS_ZONES (see below)"
    )
    edge_dns_zone: str = Field("", description="k8gb <= 0.14's parent zone: refused, write DNS_ZONES")
    reconcile_requeue_seconds: float = Field(30, ge=0, description="periodic resync of every Gslb")
    zone_delegation_reconcile_requeue_seconds: float = Field(
        300,
        ge=0,
        description="how often the edge delegation (NS + glue) is re-checked; 0: only at start (what it "
        "writes comes from settings alone; failures are still retried)",
    )
    ns_record_ttl: int = Field(
        30, ge=1, le=MAX_TTL, description=f"TTL of the NS and glue records in the edge zone, 1-{MAX_TTL}"
    )
    cluster_exposed_ips: CsvList = Field(
        default_factory=list, description="IPv4 addresses this cluster's hosts resolve to"
    )
    gluea_prefix: str = Field("gslb-ns-", description="prefix of the NS glue names")
    dns_exposed_ips: CsvList = Field(
        default_factory=list,
        description="glue A addresses of our DNS server; default: embedded, DNS_ADDRESS host or "
        "CLUSTER_EXPOSED_IPS; kubernetes, CLUSTER_EXPOSED_IPS, DNS_SERVICE_NAME's address, k8gb's CoreDNS "
        "Service (COREDNS_SERVICE_TYPE=LoadBalancer) or the first Ingress labelled k8gb.io/ip-source=true",
    )
    dns_service_name: str = Field(
        "",
        description="kubernetes mode: the Service in POD_NAMESPACE in front of our DNS server; its load "
        "balancer address (ClusterIP type: its cluster IPs) is the glue, followed as it changes",
    )
    coredns_service_type: Literal["ClusterIP", "LoadBalancer", "NodePort", "ExternalName"] = Field(
        "ClusterIP",
        description="kubernetes mode, without DNS_SERVICE_NAME: LoadBalancer takes the glue from k8gb's "
        "CoreDNS Service in POD_NAMESPACE (app.kubernetes.io/name=coredns), else from the first Ingress "
        "labelled k8gb.io/ip-source=true",
    )
    peer_refresh_seconds: float = Field(5, gt=0, description="how often peers' localtargets are re-queried")

    # --- edge DNS providers ----------------------------------------------------------------------
    edge_dns_type: Literal["none", "rfc2136", "infoblox"] = Field(
        "none", description="provider for NS + glue"
    )
    extdns_enabled: bool = Field(
        False, description="k8gb's ExternalDNS edge provider: not supported, true is refused (EDGE_DNS_TYPE)"
    )
    rfc2136_host: str = Field("", description="RFC2136 server, host or host:port")
    rfc2136_tsig_keyname: str = Field("", description="TSIG key name")
    rfc2136_tsig_secret: SecretStr | None = Field(
        None, description="TSIG secret, base64 (or RFC2136_TSIG_SECRET_FILE)"
    )
    rfc2136_tsig_secret_file: Path | None = Field(None, description="file holding the TSIG secret")
    rfc2136_tsig_algorithm: str = Field("hmac-sha256", description="TSIG algorithm")
    rfc2136_timeout: float = Field(5.0, gt=0, description="seconds per RFC2136 update or transfer")
    infoblox_grid_host: str = Field(
        "", description="Infoblox grid host name or IP; selects the infoblox provider"
    )
    infoblox_wapi_port: int = Field(443, ge=1, le=65535, description="WAPI port")
    infoblox_wapi_username: str = Field("", description="WAPI user (required with Infoblox)")
    infoblox_wapi_password: SecretStr | None = Field(None, description="WAPI password (or ..._PASSWORD_FILE)")
    infoblox_wapi_password_file: Path | None = Field(None, description="file holding the WAPI password")
    infoblox_wapi_version: str = Field("v2", description="WAPI version, e.g. 2.3.1 (required with Infoblox)")
    infoblox_http_request_timeout: float = Field(20, gt=0, description="seconds per WAPI request")
    infoblox_dns_view: str = Field("default", description="DNS view of the delegated zone")
    infoblox_scheme: Literal["https", "http"] = Field("https", description="WAPI scheme")
    infoblox_ssl_verify: bool = Field(True, description="verify the grid's TLS certificate (k8gb never does)")

    # --- geoip ---------------------------------------------------------------------------------
    geoip_cidrs: str = Field(
        "",
        description="CIDR=tag pairs, comma separated: location table for geoip, e.g. `10.0.0.0/8=eu`; "
        "network addresses only (no host bits), tags as CLUSTER_GEO_TAG",
    )
    geoip_database: Path | None = Field(None, description="MaxMind-format database for geoip")
    geoip_field: str = Field("datacenter", description="field of the MaxMind record holding the geo tag")

    # --- observability -------------------------------------------------------------------------
    tracing_enabled: bool = Field(False, description="export traces over OTLP")
    otel_exporter_otlp_endpoint: str = Field(
        "localhost:4318", description="host:port (k8gb) or URL; unset with gRPC: localhost:4317"
    )
    otel_exporter_otlp_traces_endpoint: str | None = Field(
        None, description="full URL for traces, used as given; wins over OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    otel_exporter_otlp_protocol: Literal["http/protobuf", "grpc"] = Field(
        "http/protobuf", description="OTLP transport: http/protobuf or grpc"
    )
    otel_exporter_otlp_traces_protocol: Literal["http/protobuf", "grpc"] | None = Field(
        None, description="OTLP transport for traces; wins over OTEL_EXPORTER_OTLP_PROTOCOL"
    )
    otel_exporter_otlp_timeout: int | None = Field(
        None,
        gt=0,
        description=f"milliseconds, as the standard says, one export may take (retries included); unset: "
        f"{EXPORT_TIMEOUT_S * 1000:.0f}",
    )
    otel_exporter_otlp_traces_timeout: int | None = Field(
        None, gt=0, description="milliseconds for traces; wins over OTEL_EXPORTER_OTLP_TIMEOUT"
    )
    tracing_sampling_ratio: float = Field(1.0, ge=0, le=1, description="parent-based ratio sampling")
    otel_service_name: str = Field(
        "pygslb",
        validation_alias=AliasChoices("OTEL_SERVICE_NAME", "otel_service_name"),
        description="service.name of exported spans; unset, a service.name in OTEL_RESOURCE_ATTRIBUTES wins",
    )
    log_level: Literal["trace", "debug", "info", "warn", "error"] = Field("info", description="log level")
    log_format: Literal["simple", "json"] = Field("simple", description="simple (console) or json")

    _split = field_validator(
        "ext_gslb_clusters_geo_tags",
        "edge_dns_servers",
        "cluster_exposed_ips",
        "dns_exposed_ips",
        mode="before",
    )(_csv)

    _timeouts = field_validator(
        "otel_exporter_otlp_timeout", "otel_exporter_otlp_traces_timeout", mode="before"
    )(timeout_ms)

    @field_validator("otel_exporter_otlp_protocol", "otel_exporter_otlp_traces_protocol", mode="before")
    @classmethod
    def _empty_protocol_is_unset(cls, value: object, info: ValidationInfo) -> object:
        """The standard: an empty value is read as unset."""
        if isinstance(value, str) and not value.strip():
            return "http/protobuf" if info.field_name == "otel_exporter_otlp_protocol" else None
        return value

    @field_validator("cluster_geo_tag")
    @classmethod
    def _geotag(cls, value: str) -> str:
        if not GEOTAG.fullmatch(value):
            raise ValueError("letters, digits and '-' only")
        return value

    @field_validator("gluea_prefix")
    @classmethod
    def _glue_prefix(cls, value: str) -> str:
        # the start of a DNS label: an edge server refuses names with anything else (BIND: check-names)
        if not _GLUE_PREFIX.fullmatch(value):
            raise ValueError("letters, digits and '-', starting with a letter or digit")
        return value

    @field_validator("ext_gslb_clusters_geo_tags")
    @classmethod
    def _geotags(cls, value: list[str]) -> list[str]:
        for tag in value:
            if not GEOTAG.fullmatch(tag):
                raise ValueError(f"{tag!r}: letters, digits and '-' only")
        return list(dict.fromkeys(value))

    @field_validator("cluster_exposed_ips", "dns_exposed_ips")
    @classmethod
    def _ipv4(cls, value: list[str]) -> list[str]:
        for ip in value:
            ipaddress.IPv4Address(ip)
        return list(dict.fromkeys(value))

    @field_validator("dns_service_name")
    @classmethod
    def _service_name(cls, value: str) -> str:
        if value and not _SERVICE_NAME.fullmatch(value):
            raise ValueError(
                "a Service name: at most 63 lowercase letters, digits and '-', starting with a letter"
            )
        return value

    @field_validator("api_address", "dns_address")
    @classmethod
    def _address(cls, value: str) -> str:
        if value.strip():
            split_host_port(value, 0)
        return value

    @field_validator("edge_dns_servers")
    @classmethod
    def _servers(cls, value: list[str]) -> list[str]:
        for server in value:
            edge_server(server)
        twice = [server for server in dict.fromkeys(value) if value.count(server) > 1]
        if twice:  # k8gb: unique
            raise ValueError(f"{twice[0]!r} is listed twice")
        return value

    @field_validator("dns_zones")
    @classmethod
    def _zones(cls, value: str) -> str:
        parse_dns_zones(value)
        return value

    @field_validator("geoip_cidrs")
    @classmethod
    def _geo_cidrs(cls, value: str) -> str:
        parse_geo_cidrs(value)  # the DNS server parses it again when it builds its locator
        return value

    @model_validator(mode="after")
    def _secrets_from_files(self) -> Settings:
        for secret, path in (
            ("gslb_api_token", self.gslb_api_token_file),
            ("rfc2136_tsig_secret", self.rfc2136_tsig_secret_file),
            ("infoblox_wapi_password", self.infoblox_wapi_password_file),
        ):
            if path is not None and getattr(self, secret) is None:
                try:
                    setattr(self, secret, SecretStr(path.read_text().strip()))
                except (OSError, UnicodeDecodeError) as exc:
                    reason = getattr(exc, "strerror", None) or str(exc)
                    raise ValueError(f"{secret.upper()}_FILE: cannot read {path}: {reason}") from None
        if (self.gslb_tls_cert_file is None) != (self.gslb_tls_key_file is None):
            raise ValueError("GSLB_TLS_CERT_FILE and GSLB_TLS_KEY_FILE must be set together")
        self._legacy_settings()
        self._edge_provider()
        check_propagators(os.environ)  # read whether tracing is on or not, when the API is imported
        if self.tracing_enabled:
            self.otlp_traces_url  # noqa: B018 - a bad endpoint stops start-up here, naming the setting
            batch_limits(os.environ)  # so do batch sizes the SDK would refuse with a traceback
        for zone in self.zones:
            for tag in dict.fromkeys([self.cluster_geo_tag, *self.ext_gslb_clusters_geo_tags]):
                glue = zone.glue_name(self.gluea_prefix, tag)
                if not valid_name(glue):
                    raise ValueError(
                        f"GLUEA_PREFIX, CLUSTER_GEO_TAG, EXT_GSLB_CLUSTERS_GEO_TAGS: the glue name {glue!r} "
                        "is not a DNS name the edge accepts (labels of 1-63 letters, digits and '-', "
                        "not at either end)"
                    )
        return self

    def _legacy_settings(self) -> None:
        """k8gb's older names: EDGE_DNS_SERVER(_PORT) is still honoured as k8gb honours it, the single zone
        of k8gb <= 0.14 is refused as k8gb refuses it (it no longer reads it and requires DNS_ZONES)."""
        if not self.edge_dns_servers and self.edge_dns_server:
            entry = f"{self.edge_dns_server.strip()}:{self.edge_dns_server_port}"
            try:
                edge_server(entry)
            except ValueError as exc:
                raise ValueError(f"EDGE_DNS_SERVER: {exc}") from None
            self.edge_dns_servers = [entry]
        elif not self.edge_dns_servers and "edge_dns_server_port" in self.model_fields_set:
            raise ValueError(
                "EDGE_DNS_SERVER_PORT: set without EDGE_DNS_SERVER (write EDGE_DNS_SERVERS=host:port)"
            )
        legacy = [name for name in ("dns_zone", "edge_dns_zone") if getattr(self, name)]
        if legacy and "dns_zones" not in self.model_fields_set:
            parent = self.edge_dns_zone or "<EDGE_DNS_ZONE>"
            zone = self.dns_zone or "<DNS_ZONE>"
            raise ValueError(
                f"{', '.join(name.upper() for name in legacy)}: k8gb <= 0.14's single zone is no longer read "
                f"(k8gb requires DNS_ZONES too); set DNS_ZONES={parent}:{zone}:30 instead "
                "(parent:loadBalancedZone:negTTL)"
            )

    def _edge_provider(self) -> None:
        """One edge provider, as k8gb: INFOBLOX_GRID_HOST alone selects Infoblox, two are refused, and
        ExternalDNS, which pygslb does not drive, is refused instead of being ignored."""
        chosen: dict[str, list[str]] = {}
        if self.extdns_enabled:
            chosen.setdefault("ExternalDNS", []).append("EXTDNS_ENABLED")
        if self.edge_dns_type != "none":
            chosen.setdefault(self.edge_dns_type, []).append("EDGE_DNS_TYPE")
        if self.infoblox_grid_host:
            chosen.setdefault("infoblox", []).append("INFOBLOX_GRID_HOST")
        if len(chosen) > 1:
            names = sorted(name for names in chosen.values() for name in names)
            raise ValueError(
                f"{', '.join(names)}: multiple DNS providers configured simultaneously "
                f"({', '.join(chosen)}); pygslb writes the edge delegation through one"
            )
        if self.extdns_enabled:
            raise ValueError(
                "EXTDNS_ENABLED: pygslb does not write the edge delegation through ExternalDNS; set "
                "EDGE_DNS_TYPE to rfc2136, infoblox or none (docs/helm.md)"
            )
        if self.infoblox_grid_host and self.edge_dns_type == "none":
            self.edge_dns_type = "infoblox"
        if self.edge_dns_type == "infoblox":
            self._infoblox()
        elif self.edge_dns_type == "rfc2136":
            self._rfc2136()

    def _infoblox(self) -> None:
        """k8gb's ValidateInfobloxStruct, at start: a grid host that is a host name or an IP, a WAPI
        version, a user and a password (pygslb used to start and fail on every request)."""
        host = self.infoblox_grid_host
        if not host:
            raise ValueError("INFOBLOX_GRID_HOST: EDGE_DNS_TYPE=infoblox needs the grid's host name or IP")
        try:
            ipaddress.ip_address(host)
        except ValueError:
            if not _HOSTNAME.fullmatch(host) or _DOTTED_NUMBERS.fullmatch(host):
                raise ValueError(
                    f"INFOBLOX_GRID_HOST: {host!r} is not a host name or an IP address"
                ) from None
        if not self.infoblox_wapi_version.strip():
            raise ValueError("INFOBLOX_WAPI_VERSION: empty; give the grid's WAPI version, e.g. 2.3.1")
        if not self.infoblox_wapi_username:
            raise ValueError("INFOBLOX_WAPI_USERNAME: required with Infoblox (INFOBLOX_GRID_HOST is set)")
        if self.infoblox_wapi_password is None or not self.infoblox_wapi_password.get_secret_value():
            raise ValueError(
                "INFOBLOX_WAPI_PASSWORD: required with Infoblox (or INFOBLOX_WAPI_PASSWORD_FILE)"
            )

    def _rfc2136(self) -> None:
        if not self.rfc2136_host:
            raise ValueError("RFC2136_HOST: EDGE_DNS_TYPE=rfc2136 needs the server, host or host:port")
        try:
            split_host_port(self.rfc2136_host, 53)
        except ValueError as exc:
            raise ValueError(f"RFC2136_HOST: {exc}") from None
        if self.rfc2136_tsig_keyname and not (
            self.rfc2136_tsig_secret and self.rfc2136_tsig_secret.get_secret_value()
        ):
            raise ValueError(
                "RFC2136_TSIG_SECRET: RFC2136_TSIG_KEYNAME is set but the secret (or _FILE) is empty"
            )

    def notices(self, environ: Mapping[str, str] = os.environ) -> list[str]:
        """Warnings for the start's log: deprecated names in use, and k8gb settings pygslb ignores."""
        notes = []
        legacy = ["EDGE_DNS_SERVER"] if self.edge_dns_server else []
        legacy += ["EDGE_DNS_SERVER_PORT"] if "edge_dns_server_port" in self.model_fields_set else []
        if legacy:  # k8gb's GetDeprecations, and what became of them
            fallback = f"{self.edge_dns_server.strip()}:{self.edge_dns_server_port}"
            used = self.edge_dns_server and self.edge_dns_servers == [fallback]
            outcome = (
                f"used as EDGE_DNS_SERVERS={self.edge_dns_servers[0]}" if used else "EDGE_DNS_SERVERS wins"
            )
            notes.append(f"{' and '.join(legacy)} deprecated, use EDGE_DNS_SERVERS instead ({outcome})")
        names = {name.upper() for name in environ}
        ignored = {
            name: why
            for name, why in _IGNORED.items()
            if name in names and (name not in ("DNS_ZONE", "EDGE_DNS_ZONE") or getattr(self, name.lower()))
        }
        if ignored:
            notes.append(
                "ignored k8gb settings: " + "; ".join(f"{name} ({why})" for name, why in ignored.items())
            )
        # The timeout in use (the traces one wins), when tracing is: below this, seconds were meant?
        name = (
            "otel_exporter_otlp_traces_timeout"
            if self.otel_exporter_otlp_traces_timeout is not None
            else "otel_exporter_otlp_timeout"
        )
        given = getattr(self, name)
        if self.tracing_enabled and given is not None and given < _SHORT_EXPORT_TIMEOUT_MS:
            notes.append(
                f"{name.upper()}={given} is {given} ms (the standard's unit is milliseconds, "
                f"{given * 1000} for {given} s): an export that takes longer fails"
            )
        return notes

    @property
    def otlp_protocol(self) -> Literal["http/protobuf", "grpc"]:
        """The traces' OTLP transport: the signal's own setting wins, as the standard requires."""
        return self.otel_exporter_otlp_traces_protocol or self.otel_exporter_otlp_protocol

    @property
    def otlp_export_timeout_s(self) -> float:
        """Seconds one export may take: the traces' timeout, else the general one (both milliseconds)."""
        given = self.otel_exporter_otlp_traces_timeout or self.otel_exporter_otlp_timeout
        return given / 1000 if given is not None else EXPORT_TIMEOUT_S

    @property
    def otlp_traces_url(self) -> str:
        """Where spans go: the traces endpoint as given, else the general one normalised (setup.py)."""
        from app.otlp import otlp_endpoint

        protocol = self.otlp_protocol
        if self.otel_exporter_otlp_traces_endpoint:
            try:
                return otlp_endpoint(self.otel_exporter_otlp_traces_endpoint, protocol, as_given=True)
            except ValueError as exc:
                raise ValueError(f"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: {exc}") from None
        given = self.otel_exporter_otlp_endpoint
        if "otel_exporter_otlp_endpoint" not in self.model_fields_set:
            given = "localhost"  # the standard's default: port 4318 for HTTP, 4317 for gRPC
        try:
            return otlp_endpoint(given, protocol)
        except ValueError as exc:
            raise ValueError(f"OTEL_EXPORTER_OTLP_ENDPOINT: {exc}") from None

    @cached_property
    def zones(self) -> list[ZoneConfig]:
        return parse_dns_zones(self.dns_zones)

    @property
    def peer_tags(self) -> list[str]:
        return [t for t in self.ext_gslb_clusters_geo_tags if t != self.cluster_geo_tag]

    @property
    def api_host_port(self) -> tuple[str, int]:
        return split_host_port(self.api_address, 8080)

    @property
    def dns_host_port(self) -> tuple[str, int]:
        return split_host_port(self.dns_address, 53)

    @property
    def edge_servers(self) -> list[tuple[str, int]]:
        return [edge_server(s) for s in self.edge_dns_servers]

    @property
    def glue_ips(self) -> list[str]:
        """Where peers and the edge reach this cluster's DNS server, as settings alone say (embedded
        mode; kubernetes mode reads the cluster after DNS_EXPOSED_IPS and CLUSTER_EXPOSED_IPS: see
        stores/kube/glue.py)."""
        if self.dns_exposed_ips:
            return list(self.dns_exposed_ips)
        host, _ = self.dns_host_port
        try:
            if not ipaddress.IPv4Address(host).is_unspecified:
                return [host]
        except ValueError:
            pass
        return list(self.cluster_exposed_ips)

    def api_token(self) -> str | None:
        return self.gslb_api_token.get_secret_value() if self.gslb_api_token else None


#: k8gb's settings pygslb reads nothing from, and why: one start-up warning lists those set.
_IGNORED = {
    "METRICS_ADDRESS": "/metrics is served on API_ADDRESS",
    "NO_COLOR": "log lines are never coloured",
    "ZONE_DELEGATION_RECOVERY_SECONDS": "a failed delegation is retried with backoff from 1 s to 60 s",
    "INFOBLOX_HTTP_POOL_CONNECTIONS": "WAPI requests share one connection pool of the HTTP client's size",
    "SPLIT_BRAIN_CHECK": "k8gb <= 0.14's split-brain TXT heartbeat is gone, as in k8gb",
    "COREDNS_EXPOSED": "deprecated and ignored by k8gb too",
    "FEATURE_DYNAMIC_ZONES": "zones come from DNS_ZONES only, there are no ZoneDelegation resources",
    "DNS_ZONE": "k8gb <= 0.14's single zone; DNS_ZONES is set and wins",
    "EDGE_DNS_ZONE": "k8gb <= 0.14's single zone; DNS_ZONES is set and wins",
}


def load_settings(**overrides: object) -> Settings:
    """Read the environment (and overrides from the command line) once, at start-up."""
    return Settings(**overrides)  # type: ignore[arg-type]


def settings_table() -> str:
    """The README's settings table, generated so it cannot drift from the code."""
    rows = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for name, info in Settings.model_fields.items():
        default = info.default_factory() if info.default_factory is not None else info.default  # type: ignore[call-arg]
        shown = "" if default in (None, "", []) else f"`{default}`"
        rows.append(f"| `{name.upper()}` | {shown} | {info.description or ''} |")
    return "\n".join(rows)
