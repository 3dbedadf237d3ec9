"""CustomResourceDefinitions generated from the Gslb models, so the cluster and the API validate alike.

The pydantic models in `gslb.py` are the source of truth. Their JSON Schema is turned into the
*structural* OpenAPI v3 schema Kubernetes demands: every `$ref` inlined, `Optional` unions collapsed
to their one real branch (absent and null mean the same to the API server), `const` made an `enum`,
no `title` and no `default` but one (below), and JSON-Schema-2020 numeric
exclusive bounds rewritten in OpenAPI 3.0's boolean form. Anything the conversion cannot express
raises `UnstructuralSchemaError` naming the path, so a model change that would break the CRD fails
at generation time, not at `kubectl apply`.

The one default: `spec.strategy.dnsTtlSeconds` 30. k8gb defaults it in the controller and writes it
back, a second write and a second reconcile of every Gslb created without one; with the default in
the schema the API server fills it in on admission. The controller still writes it back where the
schema has no default (k8gb's own CRDs) or the value is 0, so both ways end with the same object.

`DNSEndpoint` is not ours: it is ExternalDNS's resource, described here field for field so that
the chart can ship it for clusters without ExternalDNS (k8gb's chart does the same).

Pure: builds dicts and YAML text; writing files is the caller's job (`crd_files()`).
"""

from __future__ import annotations

from typing import Any

import yaml

from app.domain import gslb

CRD_API_VERSION = "apiextensions.k8s.io/v1"
DNSENDPOINT_GROUP = "externaldns.k8s.io"
DNSENDPOINT_VERSION = "v1alpha1"
REGENERATE_HINT = "gslb crds --split chart/crds"

# Schema keywords a structural schema may carry (apiextensions.k8s.io/v1 JSONSchemaProps, minus the
# ones Kubernetes forbids or that make a schema non-structural), in the order the YAML shows them:
# what a node is first, then what it contains.
_KEYWORDS = (
    "description",
    "type",
    "format",
    "enum",
    "pattern",
    "multipleOf",
    "minimum",
    "exclusiveMinimum",
    "maximum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
    "properties",
    "required",
    "items",
    "additionalProperties",
)
_KEPT = frozenset(_KEYWORDS)
_ORDER = {key: i for i, key in enumerate(_KEYWORDS)}
_DROPPED = frozenset({"title", "default", "examples"})

Schema = dict[str, Any]


class UnstructuralSchemaError(ValueError):
    """The model uses a construct a structural CRD schema cannot express."""


# --- JSON Schema (pydantic) → structural OpenAPI v3 ------------------------------------------


def structural(schema: Schema, defs: dict[str, Schema], path: str = "") -> Schema:
    """One pydantic JSON Schema node as a structural OpenAPI v3 node (recursively, refs inlined)."""
    node = dict(schema)
    if "$ref" in node:
        target = _resolve(node.pop("$ref"), defs, path)
        node = {**target, **node}  # the field's own description wins over the model's docstring
    if "anyOf" in node:
        branches = [b for b in node.pop("anyOf") if b != {"type": "null"}]
        if len(branches) != 1:
            raise UnstructuralSchemaError(
                f"{path or '<root>'}: a union of {len(branches)} types is not structural"
            )
        branch = branches[0]
        if "$ref" in branch:
            branch = _resolve(branch["$ref"], defs, path)
        node = {**branch, **{k: v for k, v in node.items() if k == "description"}}
    if "const" in node:
        node["enum"] = [node.pop("const")]
    for bound, plain in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(node.get(bound), int | float) and not isinstance(node[bound], bool):
            node[plain] = node.pop(bound)
            node[bound] = True

    out: Schema = {}
    for key, value in node.items():
        if key in _DROPPED:
            continue
        if key not in _KEPT and not key.startswith("x-kubernetes-"):  # x-kubernetes-*: json_schema_extra
            raise UnstructuralSchemaError(f"{path or '<root>'}: keyword {key!r} has no structural equivalent")
        if key == "properties":
            out[key] = {name: structural(sub, defs, f"{path}.{name}") for name, sub in value.items()}
        elif key == "items":
            out[key] = structural(value, defs, f"{path}[]")
        elif key == "additionalProperties":
            if value is True:
                out["x-kubernetes-preserve-unknown-fields"] = True
            elif value is not False:
                out[key] = structural(value, defs, f"{path}{{}}")
        else:
            out[key] = value
    if "type" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
        raise UnstructuralSchemaError(f"{path or '<root>'}: no type (structural schemas type every node)")
    return dict(sorted(out.items(), key=lambda item: _ORDER.get(item[0], len(_ORDER))))


def _resolve(ref: str, defs: dict[str, Schema], path: str) -> Schema:
    prefix = "#/$defs/"
    if not ref.startswith(prefix) or ref[len(prefix) :] not in defs:
        raise UnstructuralSchemaError(f"{path or '<root>'}: cannot resolve {ref}")
    return defs[ref[len(prefix) :]]


# --- Gslb ---------------------------------------------------------------------------------------


def gslb_schema(group: str = gslb.GROUP) -> Schema:
    """The openAPIV3Schema of a Gslb in `group` (the legacy group lacks `spec.serviceHealthPolicy`)."""
    if group not in gslb.GROUPS:
        raise ValueError(f"unknown Gslb group {group!r}; one of {', '.join(gslb.GROUPS)}")
    raw = gslb.Gslb.model_json_schema(by_alias=True, mode="validation")
    defs: dict[str, Schema] = raw.get("$defs", {})
    props: dict[str, Schema] = raw["properties"]
    schema: Schema = {
        "description": "Gslb: hosts balanced across clusters by DNS, with a strategy (k8gb-compatible).",
        "type": "object",
        "properties": {
            # The API server owns these three; a CRD may only say they exist.
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": structural(props["spec"], defs, ".spec"),
            "status": structural(props["status"], defs, ".status"),
        },
        "required": [r for r in raw.get("required", []) if r in {"spec", "status"}],
    }
    spec = schema["properties"]["spec"]["properties"]
    spec["strategy"]["properties"]["dnsTtlSeconds"]["default"] = gslb.DEFAULT_DNS_TTL_SECONDS
    if group == gslb.LEGACY_GROUP:
        spec.pop("serviceHealthPolicy", None)
    return schema


def gslb_crd(group: str = gslb.GROUP) -> dict[str, Any]:
    """The CustomResourceDefinition `gslbs.<group>`, with k8gb's printer columns."""
    return {
        "apiVersion": CRD_API_VERSION,
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{gslb.PLURAL}.{group}"},
        "spec": {
            "group": group,
            "names": {
                "kind": gslb.KIND,
                "listKind": f"{gslb.KIND}List",
                "plural": gslb.PLURAL,
                "singular": gslb.KIND.lower(),
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": gslb.VERSION,
                    "served": True,
                    "storage": True,
                    "additionalPrinterColumns": [
                        {"name": "strategy", "type": "string", "jsonPath": ".spec.strategy.type"},
                        {"name": "geoTag", "type": "string", "jsonPath": ".status.geoTag"},
                        {"name": "hosts", "type": "string", "jsonPath": ".status.hosts", "priority": 1},
                    ],
                    "schema": {"openAPIV3Schema": gslb_schema(group)},
                    "subresources": {"status": {}},
                }
            ],
        },
    }


# --- DNSEndpoint (ExternalDNS's resource) --------------------------------------------------------


def dnsendpoint_schema() -> Schema:
    """ExternalDNS's DNSEndpoint v1alpha1, which k8gb (and pygslb in kubernetes mode) writes."""
    string: Schema = {"type": "string"}
    endpoint: Schema = {
        "description": "One record set: a name, its type, TTL and targets.",
        "type": "object",
        "properties": {
            "dnsName": {"description": "The record's name.", "type": "string"},
            "targets": {"description": "The record's values.", "type": "array", "items": string},
            "recordType": {"description": "A, AAAA, CNAME, NS, TXT, ...", "type": "string"},
            "recordTTL": {"description": "TTL in seconds.", "type": "integer", "format": "int64"},
            "labels": {
                "description": "Free-form labels (k8gb puts its strategy and weights here).",
                "type": "object",
                "additionalProperties": string,
            },
            "providerSpecific": {
                "description": "Settings only one DNS provider understands.",
                "type": "array",
                "items": {"type": "object", "properties": {"name": string, "value": string}},
            },
            "setIdentifier": {
                "description": "Tells apart record sets with the same name and type (routing policies).",
                "type": "string",
            },
        },
    }
    return {
        "description": "DNSEndpoint: record sets for ExternalDNS or k8gb's CoreDNS to publish.",
        "type": "object",
        "properties": {
            "apiVersion": string,
            "kind": string,
            "metadata": {"type": "object"},
            "spec": {
                "type": "object",
                "properties": {"endpoints": {"type": "array", "items": endpoint}},
            },
            "status": {
                "type": "object",
                "properties": {
                    "observedGeneration": {
                        "description": "The generation ExternalDNS last acted on.",
                        "type": "integer",
                        "format": "int64",
                    }
                },
            },
        },
    }


def dnsendpoint_crd() -> dict[str, Any]:
    """The CustomResourceDefinition `dnsendpoints.externaldns.k8s.io` as ExternalDNS defines it."""
    return {
        "apiVersion": CRD_API_VERSION,
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"dnsendpoints.{DNSENDPOINT_GROUP}",
            # A *.k8s.io group needs this, or the API server refuses the CRD.
            "annotations": {
                "api-approved.kubernetes.io": "https://github.com/kubernetes-sigs/external-dns/pull/2007"
            },
        },
        "spec": {
            "group": DNSENDPOINT_GROUP,
            "names": {
                "kind": "DNSEndpoint",
                "listKind": "DNSEndpointList",
                "plural": "dnsendpoints",
                "singular": "dnsendpoint",
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": DNSENDPOINT_VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": dnsendpoint_schema()},
                    "subresources": {"status": {}},
                }
            ],
        },
    }


# --- all of them, as objects, YAML, or files ------------------------------------------------------


def gslb_crds() -> list[dict[str, Any]]:
    """Every CRD pygslb needs: Gslb in both groups, then ExternalDNS's DNSEndpoint."""
    return [gslb_crd(gslb.GROUP), gslb_crd(gslb.LEGACY_GROUP), dnsendpoint_crd()]


class _NoAliasDumper(yaml.SafeDumper):
    """Spell shared sub-schemas out in full: CRD readers should not meet YAML anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _dump(obj: dict[str, Any]) -> str:
    return yaml.dump(obj, Dumper=_NoAliasDumper, sort_keys=False, default_flow_style=False, width=100)


def crds_yaml() -> str:
    """All CRDs as one multi-document YAML stream (what `gslb crds` prints)."""
    return "".join(f"---\n{_dump(crd)}" for crd in gslb_crds())


def crd_filename(crd: dict[str, Any]) -> str:
    """`<group>_<plural>.yaml`, the naming controller-gen and k8gb use."""
    spec = crd["spec"]
    return f"{spec['group']}_{spec['names']['plural']}.yaml"


def crd_files() -> dict[str, str]:
    """File name → YAML text, one file per CRD, as committed under chart/crds/."""
    header = f"# Generated from app/domain/gslb.py by `{REGENERATE_HINT}`. Do not edit.\n"
    return {crd_filename(crd): header + _dump(crd) for crd in gslb_crds()}
