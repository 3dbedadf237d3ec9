"""The committed OpenAPI document is what the app serves, and it describes bodies and errors precisely."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from app.api.openapi_doc import openapi_text, render_openapi
from app.domain.gslb import GROUP, LEGACY_GROUP
from app.settings import Settings
from tests.support.api_server import Api

COMMITTED = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"
REGENERATE = "openapi/openapi.json is out of date; regenerate it with: gslb openapi > openapi/openapi.json"


async def test_committed_document_matches_the_served_one(api: Api) -> None:
    served = (await api.client.get("/openapi.json")).json()
    committed_text = COMMITTED.read_text()
    assert json.loads(committed_text) == served, REGENERATE
    assert committed_text == openapi_text(served), REGENERATE + " (formatting differs)"


def test_render_is_stable() -> None:
    assert render_openapi(Settings()) == render_openapi(Settings(gslb_api_token="x"))


def test_document_describes_bodies_and_errors() -> None:
    document: dict[str, Any] = json.loads(COMMITTED.read_text())
    paths = document["paths"]
    for group in (GROUP, LEGACY_GROUP):
        base = f"/apis/{group}/v1beta1/namespaces/{{namespace}}/gslbs"
        create = paths[base]["post"]
        for media in ("application/json", "application/yaml"):
            properties = create["requestBody"]["content"][media]["schema"]["properties"]
            assert properties["spec"] == {"$ref": "#/components/schemas/GslbSpec"}
            assert properties["apiVersion"]["const"] == f"{group}/v1beta1"
        assert "application/merge-patch+json" in paths[base + "/{name}"]["patch"]["requestBody"]["content"]
        for method in ("put", "patch", "delete"):
            responses = paths[base + "/{name}"][method]["responses"]
            for code in ("200", "401", "404", "409", "413", "415", "422"):
                assert code in responses, (group, method, code)
            for code in ("401", "404", "409", "413", "415", "422"):
                schema = responses[code]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Status"}
        assert "201" in create["responses"]
    strategy = document["components"]["schemas"]["Strategy"]
    assert strategy["properties"]["type"]["enum"] == ["roundRobin", "failover", "geoip"]
    assert strategy["then"] == {"properties": {"type": {"const": "roundRobin"}}}  # weight needs roundRobin
    ids = [op["operationId"] for item in paths.values() for op in item.values()]
    assert len(ids) == len(set(ids))
    assert "createK8gbIoV1beta1NamespacedGslb" in ids and "patchK8gbAbsaOssV1beta1NamespacedGslb" in ids


async def test_the_documented_examples_work_as_they_are(api: Api) -> None:
    """What Swagger UI's "Try it out" fills in for a create or a replace succeeds unedited, in both
    groups, for any namespace typed in the path."""
    document = json.loads(COMMITTED.read_text())
    for group in (GROUP, LEGACY_GROUP):
        collection = f"/apis/{group}/v1beta1/namespaces/{{namespace}}/gslbs"
        create = document["paths"][collection]["post"]["requestBody"]["content"]
        replace = document["paths"][f"{collection}/{{name}}"]["put"]["requestBody"]["content"]
        url = collection.format(namespace="team-a")
        created = [(await api.client.post(url, json=c["example"])).status_code for c in create.values()]
        assert created == [201] + [409] * (len(create) - 1), (group, created)  # the same object each time
        name = create["application/json"]["example"]["metadata"]["name"]
        for media, content in replace.items():
            replaced = await api.client.put(f"{url}/{name}", json=content["example"])
            assert replaced.status_code == 200, (group, media, replaced.text)


def _served_operations(document: dict[str, Any], group: str) -> dict[str, dict[str, Any]]:
    """The Gslb operations of one group by (method, suffix after the collection), as Swagger UI lists them."""
    collection = f"/apis/{group}/v1beta1/namespaces/{{namespace}}/gslbs"
    paths = document["paths"]
    return {
        "list all": paths[f"/apis/{group}/v1beta1/gslbs"]["get"],
        "list": paths[collection]["get"],
        "create": paths[collection]["post"],
        "replace": paths[f"{collection}/{{name}}"]["put"],
        "patch": paths[f"{collection}/{{name}}"]["patch"],
        "delete": paths[f"{collection}/{{name}}"]["delete"],
        "status": paths[f"{collection}/{{name}}/status"]["put"],
    }


WRITES = ("create", "replace", "patch", "delete", "status")
W3C_EXAMPLE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


async def test_writes_document_the_trace_headers_swagger_ui_sends(api: Api) -> None:
    """Every write offers optional `traceparent` and `tracestate` header fields, left empty (the W3C
    example is in the description: pre-filled, every user's writes would share one made-up trace); what
    Swagger UI then sends joins the caller's trace, and a malformed value fails nothing."""
    document = (await api.client.get("/openapi.json")).json()
    for group in (GROUP, LEGACY_GROUP):
        for operation, spec in _served_operations(document, group).items():
            headers = {p["name"]: p for p in spec["parameters"] if p["in"] == "header"}
            if operation not in WRITES:
                assert not headers, (group, operation)
                continue
            assert set(headers) == {"traceparent", "tracestate"}, (group, operation)
            assert all(not p["required"] and p["schema"] == {"type": "string"} for p in headers.values())
            assert (
                "example" not in headers["traceparent"]
                and W3C_EXAMPLE in headers["traceparent"]["description"]
            )
            assert "new trace" in headers["traceparent"]["description"]
    url = f"/apis/{GROUP}/v1beta1/namespaces/team-a/gslbs"
    create = _served_operations(document, GROUP)["create"]["requestBody"]["content"]["application/json"]
    created = await api.client.post(url, json=create["example"], headers={"traceparent": W3C_EXAMPLE})
    assert created.json()["metadata"]["annotations"]["k8gb.io/traceparent"].split("-")[1] == W3C_EXAMPLE[3:35]
    malformed = await api.client.put(
        f"{url}/roundrobin/status", json={"status": {}}, headers={"traceparent": "not-a-trace"}
    )
    assert malformed.status_code == 200, malformed.text


async def test_status_and_patch_examples_work_on_the_created_example(api: Api) -> None:
    """Swagger UI's "Try it out" on PUT status and PATCH fills in bodies that succeed unedited on the
    created example, and the patch visibly changes it (a `{}` pre-fill would be a silent no-op)."""
    document = (await api.client.get("/openapi.json")).json()
    for group in (GROUP, LEGACY_GROUP):
        operations = _served_operations(document, group)
        url = f"/apis/{group}/v1beta1/namespaces/team-b/gslbs"
        create = operations["create"]["requestBody"]["content"]["application/json"]["example"]
        assert (await api.client.post(url, json=create)).status_code == 201
        item = f"{url}/{create['metadata']['name']}"
        for media, content in operations["status"]["requestBody"]["content"].items():
            written = await api.client.put(f"{item}/status", json=content["example"])
            assert written.status_code == 200, (group, media, written.text)
            assert written.json()["status"]["serviceHealth"] == content["example"]["status"]["serviceHealth"]
        for media, content in operations["patch"]["requestBody"]["content"].items():
            assert content["example"], (group, media)
            headers = {"Content-Type": media}
            patched = await api.client.patch(item, content=json.dumps(content["example"]), headers=headers)
            assert patched.status_code == 200, (group, media, patched.text)
            assert patched.json()["metadata"]["labels"] == {"team": "web"}
            assert patched.json()["spec"]["strategy"]["dnsTtlSeconds"] == 60


async def test_every_refusal_is_documented_as_a_status(api: Api) -> None:
    """No operation documents FastAPI's `{"detail": [...]}` (the API never sends it), and a list's 400
    names its own cause: a selector, not a body."""
    document = (await api.client.get("/openapi.json")).json()
    status = {"$ref": "#/components/schemas/Status"}
    for item in document["paths"].values():
        for operation in item.values():
            for code, response in operation["responses"].items():
                if code.startswith("4"):
                    assert response["content"]["application/json"]["schema"] == status, (operation, code)
    assert not {"HTTPValidationError", "ValidationError"} & set(document["components"]["schemas"])
    for group in (GROUP, LEGACY_GROUP):
        operations = _served_operations(document, group)
        for operation in ("list all", "list"):
            described = operations[operation]["responses"]["400"]["description"]
            assert "labelSelector" in described, (group, operation)
        assert "422" not in operations["list all"]["responses"]  # its query parameters take any value


async def test_delete_documents_its_delete_options_body(api: Api) -> None:
    """DELETE offers an optional DeleteOptions body whose example works, and whose fields are honoured."""
    document = (await api.client.get("/openapi.json")).json()
    options = document["components"]["schemas"]["DeleteOptions"]["properties"]
    assert {"preconditions", "dryRun", "propagationPolicy"} <= set(options)
    for group in (GROUP, LEGACY_GROUP):
        operations = _served_operations(document, group)
        body = operations["delete"]["requestBody"]
        assert body["required"] is False
        content = body["content"]["application/json"]
        assert content["schema"] == {"$ref": "#/components/schemas/DeleteOptions"}
        url = f"/apis/{group}/v1beta1/namespaces/team-c/gslbs"
        create = operations["create"]["requestBody"]["content"]["application/json"]["example"]
        assert (await api.client.post(url, json=create)).status_code == 201
        item = f"{url}/{create['metadata']['name']}"
        for refused, code in (
            ({"preconditions": {"resourceVersion": "999999"}}, 409),
            ({"preconditions": []}, 400),
            ({"preconditions": {"uid": 5}}, 400),
            ({"dryRun": "All"}, 400),
        ):
            response = await api.client.request("DELETE", item, json=refused)
            assert response.status_code == code, (group, refused, response.text)
        empty = await api.client.delete(f"{item}?propagationPolicy=")  # not "none given": outside the enum
        assert empty.status_code == 400, (group, empty.text)
        dry = await api.client.request("DELETE", item, json={"dryRun": ["All"]})
        assert dry.status_code == 200 and (await api.client.get(item)).status_code == 200
        deleted = await api.client.request("DELETE", item, json=content["example"])
        assert deleted.status_code == 200, (group, deleted.text)
        assert (await api.client.get(item)).status_code == 404
