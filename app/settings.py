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
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.domain.gslb import GEOTAG_RE
from app.domain.locations import parse_geo_cidrs
from app.domain.zones import ZoneConfig, parse_dns_zones, valid_name
from app.otlp import batch_limits

GEOTAG = GEOTAG_RE  # k8gb's rule for geo tags, one copy of it
_GLUE_PREFIX = re.compile(r"^([a-zA-Z\d][a-zA-Z\d-]*)?$")
_SERVICE_NAME = re.compile(r"[a-z]([a-z\d-]{0,61}[a-z\d])?")  # RFC 1035 label, as Service names are

CsvList = Annotated[list[str], NoDecode]


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
    edge_dns_servers: CsvList = Field(default_factory=list, description="edge DNS servers, ip or host:port")
    dns_zones: str = Field(
        "example.com:cloud.example.com:30", description="parent:loadBalancedZone:negTTL;..."
    )
    reconcile_requeue_seconds: float = Field(30, ge=0, description="periodic resync of every Gslb")
    zone_delegation_reconcile_requeue_seconds: float = Field(
        300, ge=0.1, description="how often the edge delegation (NS + glue) is re-checked"
    )
    ns_record_ttl: int = Field(30, ge=1, description="TTL of the NS and glue records in the edge zone")
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
    rfc2136_host: str = Field("", description="RFC2136 server, host or host:port")
    rfc2136_tsig_keyname: str = Field("", description="TSIG key name")
    rfc2136_tsig_secret: SecretStr | None = Field(
        None, description="TSIG secret, base64 (or RFC2136_TSIG_SECRET_FILE)"
    )
    rfc2136_tsig_secret_file: Path | None = Field(None, description="file holding the TSIG secret")
    rfc2136_tsig_algorithm: str = Field("hmac-sha256", description="TSIG algorithm")
    rfc2136_timeout: float = Field(5.0, gt=0, description="seconds per RFC2136 update or transfer")
    infoblox_grid_host: str = Field("", description="Infoblox grid host; selects the infoblox provider")
    infoblox_wapi_port: int = Field(443, ge=1, le=65535, description="WAPI port")
    infoblox_wapi_username: str = Field("", description="WAPI user")
    infoblox_wapi_password: SecretStr | None = Field(None, description="WAPI password (or ..._PASSWORD_FILE)")
    infoblox_wapi_password_file: Path | None = Field(None, description="file holding the WAPI password")
    infoblox_wapi_version: str = Field("v2", description="WAPI version, e.g. 2.3.1")
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
    otel_exporter_otlp_endpoint: str = Field("localhost:4318", description="host:port (k8gb) or URL")
    otel_exporter_otlp_traces_endpoint: str | None = Field(
        None, description="full URL for traces, used as given; wins over OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    otel_exporter_otlp_protocol: Literal["http/protobuf", "grpc"] = Field(
        "http/protobuf", description="OTLP transport: http/protobuf or grpc"
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
            if server.count(":") <= 1:
                split_host_port(server, 53)
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
        if self.infoblox_grid_host and self.edge_dns_type == "none":
            self.edge_dns_type = "infoblox"
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

    @property
    def otlp_traces_url(self) -> str:
        """Where spans go: the traces endpoint as given, else the general one normalised (setup.py)."""
        from app.otlp import otlp_endpoint

        protocol = self.otel_exporter_otlp_protocol
        if self.otel_exporter_otlp_traces_endpoint:
            try:
                return otlp_endpoint(self.otel_exporter_otlp_traces_endpoint, protocol, as_given=True)
            except ValueError as exc:
                raise ValueError(f"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: {exc}") from None
        try:
            return otlp_endpoint(self.otel_exporter_otlp_endpoint, protocol)
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
        return [split_host_port(s, 53) for s in self.edge_dns_servers if s.count(":") <= 1]

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
