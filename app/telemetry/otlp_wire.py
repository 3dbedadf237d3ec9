"""OTLP `ExportTraceServiceRequest` bytes written straight from SDK spans.

Why: the SDK's encoder builds a protobuf object per span, attribute and value and hashes the Resource
(a JSON dump) once per span; on the export thread that took about as much CPU as creating the spans,
all of it holding the GIL the event loop needs. This writes the same message (same fields, same
values; `tests/telemetry/test_otlp_wire.py` parses both and compares) directly in protobuf's wire
format, and caches the encoding of repeated attribute pairs.

Field numbers: opentelemetry-proto `trace/v1/trace.proto`, `common/v1/common.proto`,
`resource/v1/resource.proto`, `collector/trace/v1/trace_service.proto`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import SpanKind

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope

_ONE_BYTE = [bytes((n,)) for n in range(128)]
_U64 = struct.Struct("<Q").pack
_F64 = struct.Struct("<d").pack
_U32 = struct.Struct("<I").pack
_KIND = {
    SpanKind.INTERNAL: 1,
    SpanKind.SERVER: 2,
    SpanKind.CLIENT: 3,
    SpanKind.PRODUCER: 4,
    SpanKind.CONSUMER: 5,
}
_FLAGS_HAS_IS_REMOTE = 0x100
_FLAGS_IS_REMOTE = 0x200
#: Encoded key/value pairs kept for reuse; cleared when full (values repeat a lot: names, reasons).
_CACHE_MAX = 8192
_kv_cache: dict[tuple[Any, ...], bytes] = {}


def _varint(n: int) -> bytes:
    if n < 0x80:
        return _ONE_BYTE[n]
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: tag, length, payload."""
    return tag + _varint(len(payload)) + payload


def _any_value(value: Any) -> bytes:
    """AnyValue's payload; the order of the checks is the SDK's (bool before int, str before sequence)."""
    if value is None:
        return b""
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, str):
        return _field(b"\x0a", value.encode())
    if isinstance(value, int):
        return b"\x18" + _varint(value & 0xFFFFFFFFFFFFFFFF)
    if isinstance(value, float):
        return b"\x21" + _F64(value)
    if isinstance(value, bytes):
        return _field(b"\x3a", value)
    if isinstance(value, Sequence):
        return _field(b"\x2a", b"".join(_field(b"\x0a", _any_value(v)) for v in value))
    if isinstance(value, Mapping):
        return _field(b"\x32", b"".join(_field(b"\x0a", _key_value(str(k), v)) for k, v in value.items()))
    raise TypeError(f"attribute value of type {type(value).__name__} cannot be exported")


def _key_value(key: str, value: Any) -> bytes:
    return _field(b"\x0a", key.encode()) + _field(b"\x12", _any_value(value))


def _cache_key(key: str, value: Any) -> tuple[Any, ...] | None:
    # The type is part of the key: True == 1 and hash alike, but encode differently. Sequences are
    # homogeneous in the SDK (None aside), so their first typed element stands for all.
    kind = value.__class__
    if kind is tuple:
        return (key, kind, value, next((v.__class__ for v in value if v is not None), None))
    if kind in (str, int, bool, float):
        return (key, kind, value)
    return None


def _attributes(tag: bytes, attributes: Mapping[str, Any] | None) -> bytes:
    """Every pair as a repeated KeyValue field; a pair that cannot be encoded is left out (as the SDK
    does, which logs and skips it)."""
    if not attributes:
        return b""
    out = []
    for key, value in attributes.items():
        cache_key = _cache_key(key, value)
        encoded = _kv_cache.get(cache_key) if cache_key is not None else None
        if encoded is None:
            try:
                pair = _key_value(key, value)
            except (TypeError, ValueError):
                continue
            encoded = _varint(len(pair)) + pair  # cached without the tag: each message has its own
            if cache_key is not None:
                if len(_kv_cache) >= _CACHE_MAX:
                    _kv_cache.clear()
                _kv_cache[cache_key] = encoded
        out.append(tag)
        out.append(encoded)
    return b"".join(out)


def _span(span: ReadableSpan) -> bytes:
    ctx = span.context
    assert ctx is not None, "a finished SDK span always has a context"
    parts = [b"\x0a\x10" + ctx.trace_id.to_bytes(16, "big"), b"\x12\x08" + ctx.span_id.to_bytes(8, "big")]
    if ctx.trace_state:
        parts.append(_field(b"\x1a", ",".join(f"{k}={v}" for k, v in ctx.trace_state.items()).encode()))
    parent = span.parent
    if parent:
        parts.append(b"\x22\x08" + parent.span_id.to_bytes(8, "big"))
    if span.name:
        parts.append(_field(b"\x2a", span.name.encode()))
    parts.append(b"\x30" + _ONE_BYTE[_KIND[span.kind]])
    if span.start_time:
        parts.append(b"\x39" + _U64(span.start_time))
    if span.end_time:
        parts.append(b"\x41" + _U64(span.end_time))
    parts.append(_attributes(b"\x4a", span.attributes))
    if span.dropped_attributes:
        parts.append(b"\x50" + _varint(span.dropped_attributes))
    for event in span.events:
        body = b"\x09" + _U64(event.timestamp) if event.timestamp else b""
        if event.name:
            body += _field(b"\x12", event.name.encode())
        body += _attributes(b"\x1a", event.attributes)
        if event.dropped_attributes:
            body += b"\x20" + _varint(event.dropped_attributes)
        parts.append(_field(b"\x5a", body))
    if span.dropped_events:
        parts.append(b"\x60" + _varint(span.dropped_events))
    for link in span.links:
        linked = link.context
        body = (
            b"\x0a\x10"
            + linked.trace_id.to_bytes(16, "big")
            + b"\x12\x08"
            + linked.span_id.to_bytes(8, "big")
        )
        body += _attributes(b"\x22", link.attributes)
        if link.dropped_attributes:
            body += b"\x28" + _varint(link.dropped_attributes)
        body += b"\x35" + _U32(_FLAGS_HAS_IS_REMOTE | (_FLAGS_IS_REMOTE if linked.is_remote else 0))
        parts.append(_field(b"\x6a", body))
    if span.dropped_links:
        parts.append(b"\x70" + _varint(span.dropped_links))
    status = span.status
    body = _field(b"\x12", status.description.encode()) if status.description else b""
    if status.status_code.value:
        body += b"\x18" + _ONE_BYTE[status.status_code.value]
    parts.append(_field(b"\x7a", body))
    flags = _FLAGS_HAS_IS_REMOTE | (_FLAGS_IS_REMOTE if parent is not None and parent.is_remote else 0)
    parts.append(b"\x85\x01" + _U32(flags))
    return b"".join(parts)


def _scope(scope: InstrumentationScope | None) -> bytes:
    if scope is None:
        return b""
    body = _field(b"\x0a", scope.name.encode()) if scope.name else b""
    if scope.version:
        body += _field(b"\x12", scope.version.encode())
    return body + _attributes(b"\x1a", scope.attributes)


def _resource_spans(
    resource: Resource, scopes: Iterable[tuple[InstrumentationScope | None, list[bytes]]]
) -> bytes:
    body = _field(b"\x0a", _attributes(b"\x0a", resource.attributes))
    for scope, spans in scopes:
        scope_body = _field(b"\x0a", _scope(scope)) + b"".join(_field(b"\x12", s) for s in spans)
        if scope is not None and scope.schema_url:
            scope_body += _field(b"\x1a", scope.schema_url.encode())
        body += _field(b"\x12", scope_body)
    if resource.schema_url:
        body += _field(b"\x1a", resource.schema_url.encode())
    return body


def encode_request(spans: Sequence[ReadableSpan]) -> bytes:
    """The serialized ExportTraceServiceRequest for `spans`, grouped by resource, then scope, in order
    of first appearance (as the SDK groups them)."""
    # Resources are grouped by identity: hashing one dumps its attributes to JSON, and a process has one.
    by_resource: dict[int, tuple[Resource, dict[InstrumentationScope | None, list[bytes]]]] = {}
    for span in spans:
        resource = span.resource
        group = by_resource.get(id(resource))
        if group is None:
            group = by_resource[id(resource)] = (resource, {})
        group[1].setdefault(span.instrumentation_scope or None, []).append(_span(span))
    return b"".join(
        _field(b"\x0a", _resource_spans(resource, scopes.items()))
        for resource, scopes in by_resource.values()
    )
