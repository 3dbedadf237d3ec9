"""The services file (GSLB_SERVICES_FILE): which services exist in embedded mode and how to probe them.

Embedded mode has no Kubernetes to say whether a Service's pods are ready, so each service is
declared here with its endpoints and an active probe. The shape follows Kubernetes probes
(interval, timeout, success and failure thresholds) so that operators read it without a manual.
Unknown fields are rejected: a misspelt threshold must not silently fall back to a default.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from app.domain.gslb import NAME_RE, NAMESPACE_RE
from app.domain.manifests import StrictYamlLoader

_HOSTNAME = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?$")
_PROBE_TAGS = ("http", "tcp")


class ServicesFileError(ValueError):
    """The services file cannot be used; the message names the file and the offending field."""


def split_endpoint(value: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port` into its parts; the port is required because there is no default."""
    text = value.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise ValueError(f"{value!r} must be [ipv6]:port")
        port_text = rest[1:]
        ipaddress.IPv6Address(host)
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or not host:
            raise ValueError(f"{value!r} must be host:port")
        if ":" in host:
            raise ValueError(f"{value!r}: write IPv6 addresses as [address]:port")
        if not _HOSTNAME.fullmatch(host):
            raise ValueError(f"{value!r}: {host!r} is not an IP address or host name")
    if not re.fullmatch(r"[0-9]{1,5}", port_text) or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"{value!r}: port must be a number from 1 to 65535")
    return host, int(port_text)


def _endpoint(value: str) -> str:
    split_endpoint(value)
    return value.strip()


def _matches(pattern: re.Pattern[str], what: str) -> Any:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"{value!r} is not a valid {what}")
        return value

    return AfterValidator(check)


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class _ProbeTiming(_Model):
    # Bounded, finite: an infinite interval probes once, a vanishing one spins a core, and a probe may
    # not outlast an hour.
    interval_seconds: float = Field(
        5.0, ge=0.01, le=3600, allow_inf_nan=False, description="time between two probes of one endpoint"
    )
    timeout_seconds: float = Field(
        1.0, gt=0, le=3600, allow_inf_nan=False, description="a probe not done by then has failed"
    )
    success_threshold: int = Field(
        1, ge=1, strict=True, description="consecutive passes to turn a failing endpoint ready"
    )
    failure_threshold: int = Field(
        3, ge=1, strict=True, description="consecutive failures to turn a ready endpoint failing"
    )


class HttpProbe(_ProbeTiming):
    """GET <scheme>://<endpoint><path>; passes on exactly `expectedStatus` (redirects are not followed)."""

    type: Literal["http"]
    path: Annotated[str, Field(pattern=r"^/[\x21-\x7e]*$")] = (
        "/"  # printable ASCII, as a request line takes it
    )
    scheme: Literal["http", "https"] = "http"
    expected_status: int = Field(200, ge=100, le=599)


class TcpProbe(_ProbeTiming):
    """Passes when a TCP connection to the endpoint opens within the timeout."""

    type: Literal["tcp"]


Probe = Annotated[HttpProbe | TcpProbe, Field(discriminator="type")]


class ServiceSpec(_Model):
    namespace: Annotated[str, _matches(NAMESPACE_RE, "namespace (RFC 1123 label)")]
    name: Annotated[str, _matches(NAME_RE, "name (RFC 1123 subdomain)")]
    endpoints: list[Annotated[str, AfterValidator(_endpoint)]] = Field(default_factory=list)
    probe: Probe = Field(default_factory=lambda: TcpProbe.model_validate({"type": "tcp"}))

    @property
    def key(self) -> tuple[str, str]:
        return self.namespace, self.name


class ServicesFile(_Model):
    services: list[ServiceSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> ServicesFile:
        seen: dict[tuple[str, str], int] = {}
        for index, service in enumerate(self.services):
            if service.key in seen:
                raise ValueError(
                    f"services[{index}]: {service.namespace}/{service.name} is already declared "
                    f"at services[{seen[service.key]}]"
                )
            seen[service.key] = index
        return self


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in _PROBE_TAGS and i > 0 and loc[i - 1] == "probe":
            continue  # pydantic puts the union tag in the path; the user never wrote it
        else:
            out += f".{part}" if out else part
    return out


def _problem(loc: tuple[int | str, ...], msg: str) -> str:
    msg = msg.removeprefix("Value error, ")
    return f"{_location(loc)}: {msg}" if loc else msg


def parse_services(data: object, source: str = "services file") -> list[ServiceSpec]:
    """Validate already-parsed YAML; every problem is reported with its field path."""
    if data is None:
        return []
    if not isinstance(data, dict):
        raise ServicesFileError(f"{source}: the top level must be a mapping with a 'services' list")
    try:
        return ServicesFile.model_validate(data).services
    except ValidationError as exc:
        problems = "; ".join(_problem(err["loc"], err["msg"]) for err in exc.errors())
        raise ServicesFileError(f"{source}: {problems}") from None


def load_services(path: Path | str) -> list[ServiceSpec]:
    """Read and validate the services file (blocking: for start-up, or via `aload_services`)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ServicesFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = yaml.load(text, Loader=StrictYamlLoader)  # noqa: S506 - a SafeLoader that refuses duplicate keys
    except yaml.YAMLError as exc:
        raise ServicesFileError(f"{path}: not valid YAML: {exc}") from None
    return parse_services(data, str(path))


async def aload_services(path: Path | str) -> list[ServiceSpec]:
    """`load_services` off the event loop, for reloads while serving."""
    return await asyncio.to_thread(load_services, path)
