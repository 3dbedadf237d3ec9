"""Make the OpenAPI schemas as strict as the API's validation, so a client or a fuzzer can trust them.

The pydantic models validate some rules in code (strategy types, RFC 1123 names, weight keys, weight only
with roundRobin), which pydantic cannot put into JSON Schema by itself. This adds them, from the same
constants the validators use, and the links between the operations on one Gslb.
"""

from __future__ import annotations

import json
from typing import Any

from app.api.gslb_ops import PROPAGATION_POLICIES
from app.domain import objectmeta
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
    # Empty in a request body means "the URL's" (on create, the name is then made from generateName).
    for option in _non_null(meta["name"]):
        option.update(pattern=f"^$|{NAME_RE.pattern}", maxLength=253)
    for option in _non_null(meta["namespace"]):
        option.update(pattern=f"^$|{NAMESPACE_RE.pattern}", maxLength=63)
    # Labels and annotations as the API server checks them (objectmeta); annotations' 256 KiB total
    # is the one rule JSON Schema cannot say.
    for option in _non_null(meta["labels"]):
        option["propertyNames"] = {
            "pattern": objectmeta.LABEL_KEY_PATTERN,
            "maxLength": objectmeta.KEY_MAX_LENGTH,
        }
        option["additionalProperties"] = {
            "type": "string",
            "pattern": objectmeta.LABEL_VALUE_PATTERN,
            "maxLength": objectmeta.LABEL_VALUE_MAX_LENGTH,
        }
    for option in _non_null(meta["annotations"]):
        option["propertyNames"] = {
            "pattern": objectmeta.ANNOTATION_KEY_PATTERN,
            "maxLength": objectmeta.KEY_MAX_LENGTH,
        }


def _gslb_responses(operation: dict[str, Any]) -> list[dict[str, Any]]:
    """The success responses of `operation` whose body is a Gslb."""
    gslb = {"$ref": "#/components/schemas/Gslb"}
    found = []
    for code in ("200", "201"):
        response = operation.get("responses", {}).get(code)
        if response and response.get("content", {}).get("application/json", {}).get("schema") == gslb:
            found.append(response)
    return found


def add_links(paths: dict[str, Any]) -> None:
    """OpenAPI links from every operation that returns a Gslb to every operation on that Gslb.

    They tell clients (and stateful fuzzers) that the object's metadata.namespace and metadata.name
    address it: create → read, replace, patch, delete, status; and onwards from each of those.
    """
    parameters = {"namespace": "$response.body#/metadata/namespace", "name": "$response.body#/metadata/name"}
    for path in paths:
        if not path.endswith("/namespaces/{namespace}/gslbs/{name}"):
            continue
        targets = [op for sub in (path, f"{path}/status") for op in paths.get(sub, {}).values()]
        sources = [*targets, paths.get(path.removesuffix("/{name}"), {}).get("post", {})]
        for source in sources:
            for response in _gslb_responses(source):
                response["links"] = {
                    target["operationId"]: {"operationId": target["operationId"], "parameters": parameters}
                    for target in targets
                }


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def add_delete_options(schemas: dict[str, Any]) -> None:
    """DeleteOptions, the optional body of a DELETE: read by hand, so no model puts it in the document."""
    precondition = _nullable({"type": "string"})
    preconditions = {
        "type": "object",
        "description": "delete only if the Gslb still has this resourceVersion (else 409) or uid",
        "properties": {"resourceVersion": precondition, "uid": precondition},
    }
    schemas["DeleteOptions"] = {
        "type": "object",
        "title": "DeleteOptions",
        "description": "How to delete; other Kubernetes DeleteOptions fields are accepted and ignored",
        "properties": {
            "preconditions": _nullable(preconditions),
            "dryRun": _nullable({"type": "array", "items": {"type": "string", "enum": ["All"]}}),
            "propagationPolicy": _nullable({"type": "string", "enum": list(PROPAGATION_POLICIES)}),
        },
    }


def unnull_query_parameters(paths: dict[str, Any]) -> None:
    """An optional query parameter (`str | None` in the handler, so an empty value is told from none) is
    never null on the wire: absent is how it is left out. Its schema keeps only the non-null type."""
    for item in paths.values():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                schema = parameter["schema"]
                if parameter["in"] == "query" and "anyOf" in schema:
                    (only,) = _non_null(schema)
                    del schema["anyOf"]
                    schema.update(only)


def drop_unused_validation_errors(document: dict[str, Any]) -> None:
    """Drop FastAPI's generic 422 (`HTTPValidationError`, a shape this API never sends) and its schemas.

    A route whose input FastAPI validates declares its 422 itself, as the Kubernetes Status it is; a
    generic one is left only on routes whose parameters accept any value (the all-namespaces lists).
    """
    generic = {"$ref": "#/components/schemas/HTTPValidationError"}
    for item in document["paths"].values():
        for operation in item.values():
            response = operation.get("responses", {}).get("422", {})
            if response.get("content", {}).get("application/json", {}).get("schema") == generic:
                del operation["responses"]["422"]
    schemas = document["components"]["schemas"]
    if "HTTPValidationError" not in json.dumps(document["paths"]):
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
