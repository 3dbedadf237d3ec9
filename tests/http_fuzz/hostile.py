"""The table of hostile requests: each one the API must refuse with a 4xx Status that names the problem.

A row says what goes on the wire (body bytes or a chunk stream, Content-Type, and optionally a hostile
namespace or name in the URL), which write operations it is sent to, the expected HTTP code and a piece
of text the Status message must contain. Bodies leave `apiVersion` out so one row fits both API groups.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

CREATE, REPLACE, PATCH, STATUS = "create", "replace", "patch", "status"
ALL = (CREATE, REPLACE, PATCH, STATUS)
OBJECT_WRITES = (CREATE, REPLACE, PATCH)  # the writes that validate metadata and spec
NOT_PATCH = (CREATE, REPLACE, STATUS)  # YAML bodies: a merge patch is JSON only
ITEM_OPS = (REPLACE, PATCH, STATUS)

NAMESPACE = "hostile"
KEEPER = "keeper"  # the object every update row targets; it must come out unchanged
MAX_BODY = 1_048_576
DEEP = 10_000
JSON = "application/json"
YAML = "application/yaml"

REASONS = {400: "BadRequest", 413: "RequestEntityTooLarge", 415: "UnsupportedMediaType", 422: "Invalid"}


def gslb(**metadata: Any) -> dict[str, Any]:
    """A valid Gslb (named `keeper` unless told otherwise) for the URL's group."""
    return {
        "kind": "Gslb",
        "metadata": {"name": KEEPER, **metadata},
        "spec": {"strategy": {"type": "roundRobin", "dnsTtlSeconds": 30}},
    }


def with_field(path: str, value: Any, **metadata: Any) -> bytes:
    """A valid Gslb with the field at the dotted `path` set to `value`, as JSON bytes."""
    document = gslb(**metadata)
    *parents, leaf = path.split(".")
    node = document
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
    return json.dumps(document).encode()


def valid_json(**metadata: Any) -> bytes:
    return json.dumps(gslb(**metadata)).encode()


def _huge() -> bytes:
    return with_field("metadata.annotations", {"filler": "x" * (2 * MAX_BODY)})


def _huge_chunks() -> Iterator[bytes]:
    """Three times the limit, 16 KiB at a time, without Content-Length."""
    data = with_field("metadata.annotations", {"filler": "x" * (3 * MAX_BODY)})
    for start in range(0, len(data), 16_384):
        yield data[start : start + 16_384]


_BILLION_LAUGHS = "\n".join(
    ["a: &a ['lol','lol','lol','lol','lol','lol','lol','lol','lol']"]
    + [f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]" for i in range(8)]
    + ["metadata: {name: keeper}", "spec: {strategy: {type: roundRobin}, junk: *i}"]
)
_KEEPER_SPEC = '"spec": {"strategy": {"type": "roundRobin"}}'


@dataclass(frozen=True)
class Hostile:
    id: str
    body: bytes | Callable[[], Iterator[bytes]]
    content_type: str | None
    code: int
    says: str
    ops: tuple[str, ...] = ALL
    namespace: str = NAMESPACE  # as it goes into the URL (already percent-encoded)
    name: str = KEEPER
    known_bug: str | None = None  # the row fails today for this reason (run as a strict xfail)

    @property
    def reason(self) -> str:
        return REASONS[self.code]


def _deep_json_in_spec(levels: int) -> bytes:
    return f'{{"metadata": {{"name": "keeper"}}, "spec": {"[" * levels}{"]" * levels}}}'.encode()


PARSING = [
    Hostile("json-array-nested-10k", _deep_json_in_spec(DEEP), JSON, 400, "nested too deeply"),
    Hostile(
        "json-object-nested-10k",
        ('{"a": ' * DEEP + "1" + "}" * DEEP).encode(),
        JSON,
        400,
        "nested too deeply",
    ),
    Hostile(
        "json-nested-101-levels",  # the object, spec, ingress, then 98 arrays
        with_field("spec.ingress.junk", json.loads("[" * 98 + "]" * 98)),
        JSON,
        400,
        "more than 100 levels",
    ),
    Hostile(
        "yaml-flow-nested-10k",
        ("spec: " + "[" * DEEP + "]" * DEEP).encode(),
        YAML,
        400,
        "nested too deeply",
        NOT_PATCH,
    ),
    Hostile(
        "yaml-block-nested-200",
        "".join(f"{'  ' * i}k{i}:\n" for i in range(200)).encode() + b"  " * 200 + b"x\n",
        YAML,
        400,
        "nested too deeply",
        NOT_PATCH,
    ),
    Hostile("over-the-limit", _huge(), JSON, 413, f"larger than the limit of {MAX_BODY} bytes"),
    Hostile("over-the-limit-chunked", _huge_chunks, JSON, 413, f"larger than the limit of {MAX_BODY} bytes"),
    Hostile(
        "duplicate-key-top",
        f'{{"metadata": {{"name": "keeper"}}, {_KEEPER_SPEC}, {_KEEPER_SPEC}}}'.encode(),
        JSON,
        400,
        "duplicate field 'spec'",
    ),
    Hostile(
        "duplicate-key-nested",
        f'{{"metadata": {{"name": "keeper", "name": "other"}}, {_KEEPER_SPEC}}}'.encode(),
        JSON,
        400,
        "duplicate field 'name'",
    ),
    Hostile(
        "yaml-duplicate-key",
        b"metadata: {name: keeper}\nspec: {strategy: {type: roundRobin, type: failover}}\n",
        YAML,
        400,
        "duplicate field 'type'",
        NOT_PATCH,
    ),
    *(
        Hostile(
            f"yaml-billion-laughs-{media}",
            _BILLION_LAUGHS.encode(),
            media,
            400,
            "aliases are not supported",
            NOT_PATCH,
        )
        for media in (YAML, "text/yaml", "application/x-yaml")
    ),
    Hostile(
        "yaml-norway",  # YAML 1.1 reads `no` as false: a label value that is not a string
        b"metadata: {name: keeper, labels: {country: no}}\nspec: {strategy: {type: roundRobin}}\n",
        YAML,
        422,
        "metadata.labels.country",
        (CREATE, REPLACE),
    ),
    Hostile("no-content-type-yaml-body", b"metadata: {name: keeper}\n", None, 400, "not valid JSON"),
    Hostile(
        "yaml-python-tag",
        b"metadata: !!python/object/apply:os.system ['true']\n",
        YAML,
        400,
        "could not determine a constructor",
        NOT_PATCH,
    ),
    Hostile(
        "yaml-set",
        b"metadata: {name: keeper}\nspec: !!set {a, b}\n",
        YAML,
        400,
        "not JSON serializable",
        NOT_PATCH,
    ),
    Hostile(
        "yaml-nan",
        b"metadata: {name: keeper}\nspec: {strategy: {dnsTtlSeconds: .nan}}\n",
        YAML,
        400,
        "float",
        NOT_PATCH,
    ),
    Hostile(
        "yaml-two-documents",
        b"metadata: {name: keeper}\n---\nmetadata: {name: other}\n",
        YAML,
        400,
        "single document",
        NOT_PATCH,
    ),
    Hostile("yaml-as-merge-patch", b"metadata: {labels: {a: b}}\n", YAML, 415, "application/yaml", (PATCH,)),
    Hostile("invalid-utf8", b'{"metadata": {"name": "\xff\xfe"}}', JSON, 400, "not UTF-8"),
    Hostile(
        "utf16", json.dumps(gslb()).encode("utf-16"), "application/json; charset=utf-16", 400, "not UTF-8"
    ),
    Hostile(
        "lone-surrogate",
        b'{"metadata": {"name": "keeper", "labels": {"a": "\\ud800"}}}',
        JSON,
        400,
        "lone surrogate",
    ),
    Hostile("utf8-bom", b"\xef\xbb\xbf" + valid_json(), JSON, 400, "BOM"),
    Hostile("empty", b"", JSON, 400, "empty"),
    Hostile("whitespace", b" \r\n\t ", JSON, 400, "empty"),
    Hostile("json-array", b"[" + valid_json() + b"]", JSON, 400, "must be an object, not list"),
    Hostile("json-string", b'"keeper"', JSON, 400, "must be an object, not str"),
    Hostile("json-null", b"null", JSON, 400, "must be an object"),
    Hostile("truncated", valid_json()[:-7], JSON, 400, "not valid JSON"),
    Hostile("trailing-garbage", valid_json() + b"}{", JSON, 400, "not valid JSON"),
    Hostile(
        "nan",
        b'{"metadata": {"name": "keeper"}, "spec": {"strategy": {"dnsTtlSeconds": NaN}}}',
        JSON,
        400,
        "NaN",
    ),
    Hostile(
        "number-out-of-range",
        b'{"metadata": {"name": "keeper"}, "spec": {"strategy": {"dnsTtlSeconds": 1e999}}}',
        JSON,
        400,
        "out of range",
    ),
]

CONTENT_TYPES = [
    Hostile(
        f"content-type-{media.split(';')[0].replace('/', '-')}", valid_json(), media, 415, media.split(";")[0]
    )
    for media in (
        "text/plain",
        "application/xml",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
        "application/octet-stream",
        "application/json-patch+json",
    )
]

LONG_NAME = "a" * 254  # a DNS subdomain has at most 253 characters
LONG_NAMESPACE = "a" * 64  # a DNS label has at most 63

NAMES = [
    Hostile(f"name-{label}", valid_json(name=name), JSON, 422, "metadata.name", (CREATE,))
    for label, name in (
        ("unicode", "gslb-ü"),
        ("emoji", "gslb-🦄"),
        ("bell", "gslb\u0007x"),
        ("nul", "gslb\u0000x"),
        ("newline", "gslb\nx"),
        ("rtl-override", "\u202egslb"),
        ("zero-width-space", "gs\u200blb"),
        ("fullwidth", "ｇｓｌｂ"),
        ("uppercase", "Gslb"),
        ("254-chars", LONG_NAME),
        ("dot-dot", "a..b"),
    )
] + [
    Hostile(
        "name-trailing-newline",
        valid_json(name="gslb\n"),
        JSON,
        422,
        "metadata.name",
        (CREATE,),
    ),
    Hostile(
        "weight-key-trailing-newline",
        with_field("spec.strategy.weight", {"eu\n": 5}),
        JSON,
        422,
        "spec.strategy.weight",
        OBJECT_WRITES,
    ),
    Hostile(
        "generate-name-trailing-newline",
        valid_json(name=None, generateName="gslb-\n"),
        JSON,
        422,
        "metadata.generateName",
        (CREATE,),
    ),
    Hostile(
        "generate-name-unicode",
        valid_json(name=None, generateName="gslb-ü-"),
        JSON,
        422,
        "metadata.generateName",
        (CREATE,),
    ),
    Hostile(
        "generate-name-249-chars",
        valid_json(name=None, generateName="a" * 249),
        JSON,
        422,
        "metadata.generateName",
        (CREATE,),
    ),
    Hostile(
        "body-namespace-unicode",
        valid_json(namespace="hostile-ü"),
        JSON,
        400,
        "does not match the namespace",
        (CREATE,),
    ),
    Hostile(
        "body-namespace-64-chars",
        valid_json(namespace=LONG_NAMESPACE),
        JSON,
        400,
        "does not match the namespace",
        (CREATE,),
    ),
    Hostile(
        "body-name-unicode",
        valid_json(name="keeper-ü"),
        JSON,
        400,
        "does not match the name on the URL",
        ITEM_OPS,
    ),
    Hostile(
        "url-namespace-64-chars",
        valid_json(name=None),
        JSON,
        422,
        "path.namespace",
        ALL,
        namespace=LONG_NAMESPACE,
    ),
    Hostile(
        "url-namespace-unicode",
        valid_json(name=None),
        JSON,
        422,
        "path.namespace",
        ALL,
        namespace="hostile-%C3%BC",
    ),
    Hostile(
        "url-namespace-control",
        valid_json(name=None),
        JSON,
        422,
        "path.namespace",
        ALL,
        namespace="host%07ile",
    ),
    Hostile("url-name-254-chars", valid_json(name=None), JSON, 422, "path.name", ITEM_OPS, name=LONG_NAME),
    Hostile(
        "url-name-unicode", valid_json(name=None), JSON, 422, "path.name", ITEM_OPS, name="keeper-%E2%80%AE"
    ),
    Hostile("url-name-nul", valid_json(name=None), JSON, 422, "path.name", ITEM_OPS, name="keeper%00"),
]

WRONG_TYPES = [
    Hostile(f"type-{label}", with_field(path, value), JSON, 422, path, OBJECT_WRITES)
    for label, path, value in (
        ("label-value-number", "metadata.labels", {"app": 5}),
        ("annotation-value-bool", "metadata.annotations", {"note": True}),
        ("strategy-type-number", "spec.strategy.type", 1),
        ("ttl-string", "spec.strategy.dnsTtlSeconds", "30"),
        ("ttl-bool", "spec.strategy.dnsTtlSeconds", True),
        ("ttl-fraction", "spec.strategy.dnsTtlSeconds", 1.5),
        ("weight-string", "spec.strategy.weight", {"eu": "50"}),
        ("spec-string", "spec", "roundRobin"),
        ("metadata-list", "metadata", ["keeper"]),
    )
] + [
    Hostile("type-name-number", with_field("metadata.name", 5), JSON, 422, "metadata.name", (CREATE,)),
    # On an update the body's name is first compared with the URL's.
    Hostile(
        "type-name-number-on-update",
        with_field("metadata.name", 5),
        JSON,
        400,
        "does not match the name on the URL",
        (REPLACE, PATCH),
    ),
    Hostile("type-status-string", with_field("status", "Healthy"), JSON, 422, "status", (STATUS,)),
    Hostile(
        "type-status-health-number",
        with_field("status", {"serviceHealth": {"app.example.com": 1}}),
        JSON,
        422,
        "status.serviceHealth",
        (STATUS,),
    ),
]

TABLE = PARSING + CONTENT_TYPES + NAMES + WRONG_TYPES
