"""Make the OpenAPI schemas as strict as the API's validation, so a client or a fuzzer can trust them.

The pydantic models validate some rules in code (strategy types, RFC 1123 names, weight keys, weight only
with roundRobin), which pydantic cannot put into JSON Schema by itself. This adds them, from the same
constants the validators use.
"""

from __future__ import annotations

from typing import Any

from app.domain.gslb import GEOTAG_RE, NAME_RE, NAMESPACE_RE, StrategyType


def _non_null(prop: dict[str, Any]) -> list[dict[str, Any]]:
    """The non-null alternatives of a property (pydantic writes `X | None` as anyOf [X, null])."""
    options = prop.get("anyOf", [prop])
    return [o for o in options if o.get("type") != "null"]


def refine_schemas(schemas: dict[str, Any]) -> None:
    strategy = schemas["Strategy"]
    strategy["properties"]["type"]["enum"] = [t.value for t in StrategyType]
    for option in _non_null(strategy["properties"]["weight"]):
        option["propertyNames"] = {"pattern": GEOTAG_RE.pattern}
    non_empty_weight = {"weight": {"type": "object", "minProperties": 1}}
    strategy["if"] = {"required": ["weight"], "properties": non_empty_weight}
    strategy["then"] = {"properties": {"type": {"const": StrategyType.ROUND_ROBIN.value}}}

    meta = schemas["ObjectMeta"]["properties"]
    for option in _non_null(meta["name"]):
        option.update(pattern=NAME_RE.pattern, maxLength=253)
    for option in _non_null(meta["namespace"]):
        option.update(pattern=NAMESPACE_RE.pattern, maxLength=63)
