"""The generated CRDs: committed copies current, structural, valid, and agreeing with the models.

k8gb-style example manifests (tests/domain/fixtures/k8gb-examples/) must pass the CRD schema the way the
API server would check them, and broken ones must fail at the field a user would be told about.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pydantic
import pytest
import yaml

from app.domain import crds, gslb

ROOT = Path(__file__).resolve().parents[2]
CHART_CRDS = ROOT / "chart" / "crds"
EXAMPLES = Path(__file__).parent / "fixtures" / "k8gb-examples"
KUBE_VERSION = "1.33.0"


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _gslbs(path: Path) -> list[dict[str, Any]]:
    return [d for d in _docs(path) if d.get("kind") == "Gslb"]


def _strict(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema as `kubectl apply --validate=strict` applies it: unknown fields are errors, not pruned."""
    out = dict(schema)
    if "properties" in schema:
        out["properties"] = {k: _strict(v) for k, v in schema["properties"].items()}
        out.setdefault("additionalProperties", False)
    if isinstance(schema.get("items"), dict):
        out["items"] = _strict(schema["items"])
    if isinstance(schema.get("additionalProperties"), dict):
        out["additionalProperties"] = _strict(schema["additionalProperties"])
    return out


def _validator(group: str) -> jsonschema.Draft4Validator:
    # OpenAPI 3.0 schemas use draft-4 semantics (boolean exclusiveMinimum).
    schema = _strict(crds.gslb_schema(group))
    schema["properties"]["metadata"] = {"type": "object"}  # ObjectMeta is the API server's business
    return jsonschema.Draft4Validator(schema)


def _schema_nodes(schema: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    nodes = [(path or "<root>", schema)]
    for name, sub in schema.get("properties", {}).items():
        nodes += _schema_nodes(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        nodes += _schema_nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        nodes += _schema_nodes(schema["additionalProperties"], f"{path}{{}}")
    return nodes


# --- the committed files ------------------------------------------------------------------------


def test_committed_crds_match_the_models() -> None:
    expected = crds.crd_files()
    committed = {p.name: p.read_text() for p in CHART_CRDS.glob("*.yaml")}
    stale = sorted(
        name for name in expected.keys() | committed.keys() if expected.get(name) != committed.get(name)
    )
    assert not stale, (
        f"chart/crds/ is out of date with app/domain/gslb.py ({', '.join(stale)}); "
        f"regenerate with `{crds.REGENERATE_HINT}`"
    )


def test_one_file_per_crd_named_after_group_and_plural() -> None:
    assert set(crds.crd_files()) == {
        "k8gb.io_gslbs.yaml",
        "k8gb.absa.oss_gslbs.yaml",
        "externaldns.k8s.io_dnsendpoints.yaml",
    }


def test_multi_document_yaml_holds_every_crd_once() -> None:
    names = [d["metadata"]["name"] for d in yaml.safe_load_all(crds.crds_yaml()) if d]
    assert names == ["gslbs.k8gb.io", "gslbs.k8gb.absa.oss", "dnsendpoints.externaldns.k8s.io"]
    assert "&id" not in crds.crds_yaml(), "YAML anchors make the CRDs hard to read"


# --- shape of the CRDs ----------------------------------------------------------------------------


@pytest.mark.parametrize("crd", crds.gslb_crds(), ids=lambda c: c["metadata"]["name"])
def test_crd_is_a_valid_kubernetes_object(crd: dict[str, Any]) -> None:
    kubernetes_validate.validate(crd, KUBE_VERSION, strict=True)


@pytest.mark.parametrize("crd", crds.gslb_crds(), ids=lambda c: c["metadata"]["name"])
def test_schema_is_structural(crd: dict[str, Any]) -> None:
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _schema_nodes(schema):
        assert "type" in node, f"{path} has no type"
        for forbidden in (
            "$ref",
            "$defs",
            "anyOf",
            "oneOf",
            "allOf",
            "title",
            "const",
            "nullable",
        ):
            assert forbidden not in node, f"{path} carries {forbidden}"
        if "default" in node:  # one default only, and one the schema itself accepts (the API server checks)
            assert path.endswith("strategy.dnsTtlSeconds"), f"{path} carries a default"
            assert node["minimum"] <= node["default"] <= node["maximum"]
        assert not isinstance(node.get("exclusiveMinimum"), int | float) or isinstance(
            node["exclusiveMinimum"], bool
        ), f"{path}: OpenAPI 3.0 wants a boolean exclusiveMinimum"
    assert schema["properties"]["metadata"] == {"type": "object"}


@pytest.mark.parametrize("group", gslb.GROUPS)
def test_gslb_crd_has_k8gb_names_columns_and_status_subresource(group: str) -> None:
    crd = crds.gslb_crd(group)
    assert crd["metadata"]["name"] == f"gslbs.{group}"
    assert crd["spec"]["scope"] == "Namespaced"
    assert crd["spec"]["names"] == {
        "kind": "Gslb",
        "listKind": "GslbList",
        "plural": "gslbs",
        "singular": "gslb",
    }
    (version,) = crd["spec"]["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1beta1", True, True)
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: (c["jsonPath"], c.get("priority", 0)) for c in version["additionalPrinterColumns"]}
    assert columns == {
        "strategy": (".spec.strategy.type", 0),
        "geoTag": (".status.geoTag", 0),
        "hosts": (".status.hosts", 1),
    }


def test_only_the_k8gb_io_group_knows_service_health_policy() -> None:
    current = crds.gslb_schema(gslb.GROUP)["properties"]["spec"]["properties"]
    legacy = crds.gslb_schema(gslb.LEGACY_GROUP)["properties"]["spec"]["properties"]
    assert current["serviceHealthPolicy"] == {"type": "string", "enum": ["Any", "All"]}
    assert "serviceHealthPolicy" not in legacy
    assert {k: v for k, v in current.items() if k != "serviceHealthPolicy"} == legacy


def test_unknown_group_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="k8gb.io, k8gb.absa.oss"):
        crds.gslb_schema("example.org")


def test_dnsendpoint_crd_matches_what_externaldns_serves() -> None:
    crd = crds.dnsendpoint_crd()
    assert crd["metadata"]["name"] == "dnsendpoints.externaldns.k8s.io"
    assert "api-approved.kubernetes.io" in crd["metadata"]["annotations"]  # required for a *.k8s.io group
    (version,) = crd["spec"]["versions"]
    assert version["name"] == "v1alpha1" and version["subresources"] == {"status": {}}
    endpoint = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["endpoints"]["items"]
    assert set(endpoint["properties"]) == {
        "dnsName",
        "targets",
        "recordType",
        "recordTTL",
        "labels",
        "providerSpecific",
        "setIdentifier",
    }
    assert endpoint["properties"]["recordTTL"] == {
        "description": "TTL in seconds.",
        "type": "integer",
        "format": "int64",
    }
    k8gb_record = {
        "apiVersion": "externaldns.k8s.io/v1alpha1",
        "kind": "DNSEndpoint",
        "metadata": {"name": "test-gslb", "namespace": "test-gslb"},
        "spec": {
            "endpoints": [
                {
                    "dnsName": "roundrobin.cloud.example.com",
                    "recordTTL": 30,
                    "recordType": "A",
                    "targets": ["10.0.0.1", "10.1.0.1"],
                    "labels": {"strategy": "roundRobin", "weight-eu-0-80": "10.0.0.1"},
                }
            ]
        },
    }
    jsonschema.Draft4Validator(_strict(version["schema"]["openAPIV3Schema"])).validate(k8gb_record)


# --- the schema follows the models ------------------------------------------------------------------


def _model_fields(model: type[pydantic.BaseModel]) -> set[str]:
    return {f.alias or name for name, f in model.model_fields.items()}


@pytest.mark.parametrize(
    ("model", "path"),
    [
        (gslb.GslbSpec, ("spec",)),
        (gslb.Strategy, ("spec", "strategy")),
        (gslb.ResourceRef, ("spec", "resourceRef")),
        (gslb.IngressSpec, ("spec", "ingress")),
        (gslb.GslbStatus, ("status",)),
    ],
    ids=lambda v: getattr(v, "__name__", None) or ".".join(v),
)
def test_every_model_field_is_in_the_schema(model: type[pydantic.BaseModel], path: tuple[str, ...]) -> None:
    node = crds.gslb_schema(gslb.GROUP)
    for step in path:
        node = node["properties"][step]
    assert set(node["properties"]) == _model_fields(model)


def test_a_union_the_crd_cannot_express_is_refused_with_its_path() -> None:
    class Odd(pydantic.BaseModel):
        value: int | str

    raw = Odd.model_json_schema()
    with pytest.raises(crds.UnstructuralSchemaError, match=r"\.value: a union of 2 types"):
        crds.structural(raw, raw.get("$defs", {}))


def test_exclusive_bounds_become_openapi_booleans() -> None:
    class Bounded(pydantic.BaseModel):
        ratio: float = pydantic.Field(gt=0, lt=1)

    node = crds.structural(Bounded.model_json_schema(), {})["properties"]["ratio"]
    assert node == {
        "type": "number",
        "minimum": 0,
        "exclusiveMinimum": True,
        "maximum": 1,
        "exclusiveMaximum": True,
    }


# --- k8gb's examples ------------------------------------------------------------------------------

GOOD = sorted(EXAMPLES.glob("*.yaml"))
BROKEN = {
    "missing-strategy.yaml": ("spec", "'strategy' is a required property"),
    "missing-strategy-type.yaml": ("spec.strategy", "'type' is a required property"),
    "weight-out-of-range.yaml": ("spec.strategy.weight.eu", "1001 is greater than the maximum of 1000"),
    "negative-ttl.yaml": ("spec.strategy.dnsTtlSeconds", "-5 is less than the minimum of 0"),
    "rule-without-paths.yaml": ("spec.ingress.rules.0.http", "'paths' is a required property"),
    "string-weight.yaml": ("spec.strategy.weight.eu", "'80%' is not of type 'integer'"),
}


def test_every_broken_example_has_an_expectation() -> None:
    assert {p.name for p in (EXAMPLES / "broken").glob("*.yaml")} == set(BROKEN)
    assert len(GOOD) >= 6


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.stem)
def test_k8gb_example_validates_against_its_crd(path: Path) -> None:
    documents = _docs(path)
    assert any(d["kind"] == "Gslb" for d in documents)
    for doc in documents:
        if doc["kind"] != "Gslb":
            kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
            continue
        group = doc["apiVersion"].split("/")[0]
        errors = [f"{'.'.join(map(str, e.path))}: {e.message}" for e in _validator(group).iter_errors(doc)]
        assert errors == []
        gslb.Gslb.model_validate(doc)  # and the models, which the API uses, agree


@pytest.mark.parametrize(("name", "expected"), sorted(BROKEN.items()), ids=lambda v: str(v).split(".")[0])
def test_broken_example_is_rejected_at_the_field(name: str, expected: tuple[str, str]) -> None:
    (doc,) = _gslbs(EXAMPLES / "broken" / name)
    errors = {(".".join(map(str, e.path)), e.message) for e in _validator(gslb.GROUP).iter_errors(doc)}
    assert expected in errors
    with pytest.raises(pydantic.ValidationError):
        gslb.Gslb.model_validate(doc)


def test_legacy_group_refuses_service_health_policy_under_strict_validation() -> None:
    (doc,) = _gslbs(EXAMPLES / "failover-primary-geotag.yaml")
    doc["apiVersion"] = f"{gslb.LEGACY_GROUP}/{gslb.VERSION}"
    messages = [e.message for e in _validator(gslb.LEGACY_GROUP).iter_errors(doc)]
    assert any("'serviceHealthPolicy' was unexpected" in m for m in messages), messages
