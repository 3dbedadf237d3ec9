"""Where OTLP spans go: an endpoint given the k8gb way (`host:port`) or the OpenTelemetry way (a URL).

Plain string rules, kept apart from the SDK wiring so settings can check an endpoint at start-up.
"""

from __future__ import annotations

from urllib.parse import urlsplit

_DEFAULT_PORTS: dict[str, int] = {"http/protobuf": 4318, "grpc": 4317}
_TRACES_PATH = "/v1/traces"


def otlp_endpoint(value: str, protocol: str, *, as_given: bool = False) -> str:
    """Normalise an OTLP endpoint given the k8gb way (`host:port`) or the OpenTelemetry way (a URL).

    - `host:port` (or `host`) means `http://host:port`, insecure; the port defaults to 4318 (HTTP) or
      4317 (gRPC). A URL without a port keeps its scheme's default port, as URLs do.
    - HTTP: `/v1/traces` is appended to the URL's path, as the standard does for OTEL_EXPORTER_OTLP_ENDPOINT
      (a hosted back end's base URL such as `https://gateway/otlp` exports to `.../otlp/v1/traces`); a
      path that already ends in `/v1/traces` is used as given, so a full URL keeps working.
    - gRPC: `scheme://host:port`; a path means nothing to gRPC and is dropped.
    - `as_given` (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, the signal's own URL): HTTP keeps the path as it is.

    Raises ValueError with the reason for anything else.
    """
    if protocol not in _DEFAULT_PORTS:
        raise ValueError(f"OTLP protocol {protocol!r}: expected 'http/protobuf' or 'grpc'")
    raw = value.strip()
    if not raw:
        raise ValueError("OTLP endpoint is empty: expected host:port or a http(s) URL")
    is_url = "://" in raw
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
