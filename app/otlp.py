"""Where OTLP spans go (an endpoint given the k8gb way, `host:port`, or the OpenTelemetry way, a URL), how
long one export may take, how many spans the batch processor holds, and which propagators exist.

Plain rules, kept apart from the SDK wiring so settings can check them at start-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from urllib.parse import urlsplit

_DEFAULT_PORTS: dict[str, int] = {"http/protobuf": 4318, "grpc": 4317}
_TRACES_PATH = "/v1/traces"

#: Seconds one export (retries included) may take unless OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT says
#: otherwise; the standard's 10 s would keep a dead collector's batches in flight needlessly long.
EXPORT_TIMEOUT_S = 3.0


def timeout_ms(value: object) -> object:
    """OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT as the standard gives it: a whole number of milliseconds above
    0 (the Python SDK alone reads seconds, so 10000 hung an export for 2.8 hours). Unset or empty: None."""
    if not isinstance(value, str):
        return value
    raw = value.strip()
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()) or int(raw) == 0:
        raise ValueError(
            f"{value!r} is not a positive whole number of milliseconds (the standard's unit: 10000 is 10 s)"
        )
    return int(raw)


def otlp_endpoint(value: str, protocol: str, *, as_given: bool = False) -> str:
    """Normalise an OTLP endpoint given the k8gb way (`host:port`) or the OpenTelemetry way (a URL).

    - `host:port` (or `host`) means `http://host:port`, insecure; the port defaults to 4318 (HTTP) or
      4317 (gRPC). A URL without a port keeps its scheme's default port, as URLs do.
    - HTTP: `/v1/traces` is appended to the URL's path, as the standard does for OTEL_EXPORTER_OTLP_ENDPOINT
      (a hosted back end's base URL such as `https://gateway/otlp` exports to `.../otlp/v1/traces`); a
      path that already ends in `/v1/traces` is used as given, so a full URL keeps working.
    - gRPC: `scheme://host:port`; a path means nothing to gRPC and is dropped.
    - `as_given` (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, the signal's own URL): HTTP keeps the path as it is,
      and needs a http(s) URL: `host:port` would post to `/`, which no collector serves (gRPC has no path,
      so it keeps taking `host:port`).

    Raises ValueError with the reason for anything else.
    """
    if protocol not in _DEFAULT_PORTS:
        raise ValueError(f"OTLP protocol {protocol!r}: expected 'http/protobuf' or 'grpc'")
    raw = value.strip()
    if not raw:
        raise ValueError("OTLP endpoint is empty: expected host:port or a http(s) URL")
    is_url = "://" in raw
    if as_given and protocol == "http/protobuf" and not is_url:
        raise ValueError(
            f"OTLP endpoint {value!r}: must be a URL such as http://host:4318/v1/traces, used as given "
            "(host:port belongs in OTEL_EXPORTER_OTLP_ENDPOINT)"
        )
    parts = urlsplit(raw if is_url else f"http://{raw}")
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"OTLP endpoint {value!r}: scheme must be http or https")
    if not parts.hostname:
        raise ValueError(f"OTLP endpoint {value!r}: no host")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"OTLP endpoint {value!r}: bad port ({exc})") from None
    if parts.query or parts.fragment:
        raise ValueError(f"OTLP endpoint {value!r}: no query or fragment allowed")
    if port == 0 or parts.netloc.endswith(":"):
        raise ValueError(f"OTLP endpoint {value!r}: bad port (empty or 0)")
    if port is None and not is_url:
        port = _DEFAULT_PORTS[protocol]
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    base = f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")
    if protocol == "grpc":
        return base
    if as_given:
        return base + parts.path
    path = parts.path.rstrip("/")
    return base + (path if path.endswith(_TRACES_PATH) else path + _TRACES_PATH)


#: Spans held while the collector is slow or away (the SDK's own default is 2048 too); beyond it new spans
#: are dropped, never waited for.
MAX_QUEUE_SIZE = 2048
#: The SDK's default export batch, used unless OTEL_BSP_MAX_EXPORT_BATCH_SIZE says otherwise.
MAX_EXPORT_BATCH_SIZE = 512
_QUEUE = "OTEL_BSP_MAX_QUEUE_SIZE"
_BATCH = "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"
_DELAY = "OTEL_BSP_SCHEDULE_DELAY"


@dataclass(frozen=True, slots=True)
class BatchLimits:
    """The batch span processor's sizes, checked before the SDK sees them (it raises a bare ValueError
    at start-up for what it refuses). `capped`: the default batch was cut down to a small queue."""

    max_queue_size: int
    max_export_batch_size: int
    capped: bool = False


def _positive(environ: Mapping[str, str], name: str) -> int | None:
    raw = environ.get(name, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or int(raw) == 0:
        raise ValueError(f"{name}: {raw!r} is not a positive whole number")
    return int(raw)


def batch_limits(environ: Mapping[str, str]) -> BatchLimits:
    """The queue and batch sizes from the standard OTEL_BSP_* variables.

    Only a queue given smaller than the default batch (512) cuts the batch down to the queue, as the Go
    SDK (k8gb's) does: the user asked for a small queue, not for 512-span batches. A batch given larger
    than the queue is a contradiction between two settings the user wrote, and is refused (ValueError
    naming both). OTEL_BSP_SCHEDULE_DELAY is only checked; the SDK reads it itself.
    """
    _positive(environ, _DELAY)
    queue = _positive(environ, _QUEUE)
    batch = _positive(environ, _BATCH)
    max_queue = queue if queue is not None else MAX_QUEUE_SIZE
    if batch is None:
        return BatchLimits(
            max_queue, min(MAX_EXPORT_BATCH_SIZE, max_queue), MAX_EXPORT_BATCH_SIZE > max_queue
        )
    if batch > max_queue:
        given = "" if queue is not None else ", the default"
        raise ValueError(
            f"{_BATCH}, {_QUEUE}: an export batch of {batch} spans cannot exceed the queue of "
            f"{max_queue}{given}"
        )
    return BatchLimits(max_queue, batch)


_PROPAGATORS = "OTEL_PROPAGATORS"


def check_propagators(environ: Mapping[str, str]) -> None:
    """OTEL_PROPAGATORS names only installed propagators, as `opentelemetry.propagate` looks them up (entry
    points of group `opentelemetry_propagator`; `none` ends the list): it raises at import otherwise, a
    traceback at start-up. ValueError naming the variable and what is installed."""
    configured = environ.get(_PROPAGATORS)
    if not configured:
        return
    installed = {entry.name for entry in entry_points(group="opentelemetry_propagator")}
    for name in (part.strip() for part in configured.split(",")):
        if name.lower() == "none":
            return
        if name not in installed:
            raise ValueError(
                f"{_PROPAGATORS}: {name!r} is not an installed propagator (installed: "
                f"{', '.join(sorted(installed))}; or none)"
            )
