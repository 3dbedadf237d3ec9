"""The Gslb resource, field for field as k8gb's CRDs (k8gb.io/v1beta1 and k8gb.absa.oss/v1beta1).

These pydantic models are the one source of truth: the REST API validates with them, the stores
persist them, and `gslb crds` generates the CustomResourceDefinitions from them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

GROUP = "k8gb.io"
LEGACY_GROUP = "k8gb.absa.oss"
VERSION = "v1beta1"
GROUPS = (GROUP, LEGACY_GROUP)
_API_VERSIONS = frozenset(f"{g}/{VERSION}" for g in GROUPS)
KIND = "Gslb"
PLURAL = "gslbs"
DEFAULT_DNS_TTL_SECONDS = 30
# The API server's mark on an object deleted with `propagationPolicy: Orphan`
# (metav1.FinalizerOrphanDependents): the garbage collector removes its dependents' references to it,
# then the finalizer.
ORPHAN_FINALIZER = "orphan"

TRACEPARENT_ANNOTATION = "k8gb.io/traceparent"
TRACESTATE_ANNOTATION = "k8gb.io/tracestate"
TRACE_GENERATION_ANNOTATION = "k8gb.io/traceparent-generation"
EXPOSED_IPS_ANNOTATION = "k8gb.io/exposed-ip-addresses"
HOSTNAME_ANNOTATION = "k8gb.io/hostname"
TRACE_ANNOTATIONS = frozenset({TRACEPARENT_ANNOTATION, TRACESTATE_ANNOTATION, TRACE_GENERATION_ANNOTATION})
_RECONCILED_PREFIXES = ("k8gb.io/", "k8gb.absa.oss/")


def reconciled_annotations(annotations: Mapping[str, str] | None) -> dict[str, str]:
    """The annotations a change of which needs a reconcile, as k8gb's update predicate has it (its
    `k8gb.io/` ones), except the trace annotations: they say who caused a change and are no change
    themselves (a traced DELETE records its caller on the object without a reconcile first)."""
    return {
        k: v
        for k, v in (annotations or {}).items()
        if k.startswith(_RECONCILED_PREFIXES) and k not in TRACE_ANNOTATIONS
    }


GEOTAG_RE = re.compile(r"^[a-zA-Z\-\d]+$")
# RFC 1123 subdomain, as Kubernetes validates metadata.name.
NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# RFC 1123 label, as Kubernetes validates metadata.namespace.
NAMESPACE_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class StrategyType(StrEnum):
    ROUND_ROBIN = "roundRobin"
    FAILOVER = "failover"
    GEOIP = "geoip"


_STRATEGY_TYPES = frozenset(t.value for t in StrategyType)


class HealthStatus(StrEnum):
    HEALTHY = "Healthy"
    UNHEALTHY = "Unhealthy"
    NOT_FOUND = "NotFound"


class ServiceHealthPolicy(StrEnum):
    ANY = "Any"
    ALL = "All"


class _Model(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields pruned like a structural CRD."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


# --- spec.ingress: a copy of networking.k8s.io/v1 IngressSpec ------------------------------------


class ServiceBackendPort(_Model):
    name: str | None = None
    number: int | None = Field(default=None, ge=1, le=65535)


class IngressServiceBackend(_Model):
    name: str
    port: ServiceBackendPort | None = None


class TypedLocalObjectReference(_Model):
    api_group: str | None = None
    kind: str
    name: str


class IngressBackend(_Model):
    service: IngressServiceBackend | None = None
    resource: TypedLocalObjectReference | None = None


class HTTPIngressPath(_Model):
    path: str | None = None
    path_type: Literal["Exact", "Prefix", "ImplementationSpecific"]
    backend: IngressBackend


class HTTPIngressRuleValue(_Model):
    paths: list[HTTPIngressPath]


class IngressRule(_Model):
    host: str | None = None
    http: HTTPIngressRuleValue


class IngressTLS(_Model):
    hosts: list[str] | None = None
    secret_name: str | None = None


class IngressSpec(_Model):
    ingress_class_name: str | None = None
    backend: IngressBackend | None = None
    tls: list[IngressTLS] | None = None
    rules: list[IngressRule] | None = None


# --- spec.resourceRef: ObjectReference + LabelSelector inline ----------------------------------


class LabelSelectorRequirement(_Model):
    key: str
    operator: str
    values: list[str] | None = None


class ResourceRef(_Model):
    api_version: str | None = None
    kind: str | None = None
    name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    field_path: str | None = None
    match_labels: dict[str, str] | None = None
    match_expressions: list[LabelSelectorRequirement] | None = None

    def is_empty(self) -> bool:
        return not (self.name or self.match_labels or self.match_expressions or self.kind)


# --- spec.strategy --------------------------------------------------------------------------------


class Strategy(_Model):
    type: str = Field(description="roundRobin, failover or geoip")
    dns_ttl_seconds: int | None = Field(default=None, ge=0, le=2_147_483_647)
    primary_geo_tag: str | None = None
    split_brain_threshold_seconds: int | None = Field(
        default=None, ge=0, description="Deprecated and ignored, kept for compatibility with k8gb."
    )
    weight: dict[str, Annotated[int, Field(ge=0, le=1000)]] | None = None

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in _STRATEGY_TYPES:
            raise ValueError(f"unsupported strategy type {value!r}; one of roundRobin, failover, geoip")
        return value

    @field_validator("weight")
    @classmethod
    def _weight_keys(cls, value: dict[str, int] | None) -> dict[str, int] | None:
        for key in value or {}:
            if not GEOTAG_RE.fullmatch(key):
                raise ValueError(f"weight key {key!r} must match {GEOTAG_RE.pattern}")
        return value

    @model_validator(mode="after")
    def _weight_requires_round_robin(self) -> Strategy:
        if self.weight and self.type != StrategyType.ROUND_ROBIN:
            raise ValueError("weightRequiresRoundRobin: weight is only allowed with type roundRobin")
        return self

    @property
    def ttl(self) -> int:
        return self.dns_ttl_seconds or DEFAULT_DNS_TTL_SECONDS


class GslbSpec(_Model):
    ingress: IngressSpec | None = None
    resource_ref: ResourceRef | None = None
    strategy: Strategy
    service_health_policy: ServiceHealthPolicy | None = None


# --- status ---------------------------------------------------------------------------------------


class NamespacedName(_Model):
    namespace: str
    name: str


class Server(_Model):
    host: str
    services: list[NamespacedName] = Field(default_factory=list)


class LoadBalancer(_Model):
    exposed_ips: list[str] | None = None


class PeerAnswer(_Model):
    """What one peer cluster answered for `localtargets-<host>` (a pygslb addition for debugging)."""

    geo_tag: str
    host: str
    targets: list[str] = Field(default_factory=list)
    error: str | None = None


class Condition(_Model):
    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str = ""
    message: str = ""
    last_transition_time: str | None = None
    observed_generation: int | None = None


class GslbStatus(_Model):
    service_health: dict[str, HealthStatus] = Field(default_factory=dict)
    healthy_records: dict[str, list[str]] = Field(default_factory=dict)
    geo_tag: str = ""
    hosts: str | None = None
    load_balancer: LoadBalancer | None = None
    servers: list[Server] | None = None
    # pygslb additions (allowed: additive, optional)
    observed_generation: int | None = None
    peers: list[PeerAnswer] | None = None
    conditions: list[Condition] | None = None


# --- the object -----------------------------------------------------------------------------------


class OwnerReference(_Model):
    api_version: str
    kind: str
    name: str
    uid: str
    controller: bool | None = None
    block_owner_deletion: bool | None = None


class ObjectMeta(_Model):
    name: str | None = None
    generate_name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    owner_references: list[OwnerReference] | None = None
    finalizers: list[str] | None = None

    @field_validator("name")
    @classmethod
    def _dns_subdomain(cls, value: str | None) -> str | None:
        if value is not None and (len(value) > 253 or not NAME_RE.fullmatch(value)):
            raise ValueError(
                "must be a lowercase RFC 1123 subdomain of at most 253 characters "
                "(a-z, 0-9, '-' and '.', starting and ending with an alphanumeric)"
            )
        return value

    @field_validator("namespace")
    @classmethod
    def _dns_label(cls, value: str | None) -> str | None:
        if value is not None and (len(value) > 63 or not NAMESPACE_RE.fullmatch(value)):
            raise ValueError("must be a lowercase RFC 1123 label of at most 63 characters")
        return value


class Gslb(_Model):
    api_version: str = f"{GROUP}/{VERSION}"
    kind: Literal["Gslb"] = "Gslb"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: GslbSpec
    status: GslbStatus | None = None

    @field_validator("api_version")
    @classmethod
    def _known_group(cls, value: str) -> str:
        if value not in _API_VERSIONS:
            raise ValueError(f"must be {GROUP}/{VERSION} or {LEGACY_GROUP}/{VERSION}")
        return value

    @model_validator(mode="after")
    def _legacy_has_no_health_policy(self) -> Gslb:
        if self.group == LEGACY_GROUP and self.spec.service_health_policy is not None:
            # The legacy CRD's structural schema does not know the field: prune it, as the API server would.
            self.spec.service_health_policy = None
        return self

    @property
    def group(self) -> str:
        return self.api_version.split("/", 1)[0]

    @property
    def name(self) -> str:
        return self.metadata.name or ""

    @property
    def namespace(self) -> str:
        return self.metadata.namespace or "default"

    def wire(self) -> dict[str, Any]:
        """The JSON form a Kubernetes client would see."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class GslbList(_Model):
    api_version: str = f"{GROUP}/{VERSION}"
    kind: Literal["GslbList"] = "GslbList"
    metadata: dict[str, Any] = Field(default_factory=dict)
    items: list[Gslb] = Field(default_factory=list)


def with_defaults(gslb: Gslb) -> Gslb:
    """k8gb's defaulting: `dnsTtlSeconds` 0 or absent becomes 30, written back into the spec."""
    strategy = gslb.spec.strategy
    if not strategy.dns_ttl_seconds:
        strategy = strategy.model_copy(update={"dns_ttl_seconds": DEFAULT_DNS_TTL_SECONDS})
        spec = gslb.spec.model_copy(update={"strategy": strategy})
        return gslb.model_copy(update={"spec": spec})
    return gslb


def hosts_and_services(gslb: Gslb) -> list[Server]:
    """Hosts of the embedded ingress with the Services behind each (same namespace), in rule order."""
    servers: dict[str, Server] = {}
    ingress = gslb.spec.ingress
    for rule in (ingress.rules if ingress else None) or []:
        if not rule.host:
            continue
        server = servers.setdefault(rule.host, Server(host=rule.host))
        for path in rule.http.paths:
            svc = path.backend.service
            if svc is None:
                continue
            ref = NamespacedName(namespace=gslb.namespace, name=svc.name)
            if ref not in server.services:
                server.services.append(ref)
    return list(servers.values())
