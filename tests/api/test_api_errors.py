"""Bad requests get a Kubernetes Status that says what is wrong, and nothing is written."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.domain.gslb import GROUP, LEGACY_GROUP
from tests.support.api_server import Api, ServeFactory, manifest
from tests.support.gslb_factory import gslb_body

COLLECTION = f"/apis/{GROUP}/v1beta1/namespaces/test-gslb/gslbs"
ITEM = f"{COLLECTION}/app"


async def assert_nothing_stored(api: Api) -> None:
    listed = (await api.client.get(f"/apis/{GROUP}/v1beta1/gslbs")).json()
    assert listed["items"] == []


def assert_status(response: httpx.Response, code: int, reason: str) -> dict[str, Any]:
    assert response.status_code == code, response.text
    assert response.headers["content-type"].startswith("application/json")
    status: dict[str, Any] = response.json()
    assert (status["kind"], status["apiVersion"], status["status"]) == ("Status", "v1", "Failure")
    assert (status["code"], status["reason"]) == (code, reason)
    assert status["message"]
    return status


def with_strategy(**strategy: Any) -> dict[str, Any]:
    body = gslb_body("app")
    body["spec"]["strategy"] = strategy
    return body


@pytest.mark.parametrize(
    ("body", "field", "cause_reason", "message_part"),
    [
        (with_strategy(type="failover", weight={"eu": 10}), "spec.strategy", "FieldValueInvalid", "weight"),
        (
            with_strategy(type="weighted"),
            "spec.strategy.type",
            "FieldValueInvalid",
            "unsupported strategy type",
        ),
        (
            with_strategy(type="roundRobin", weight={"eu": 5000}),
            "spec.strategy.weight.eu",
            "FieldValueInvalid",
            "1000",
        ),
        (
            with_strategy(type="roundRobin", dnsTtlSeconds=-1),
            "spec.strategy.dnsTtlSeconds",
            "FieldValueInvalid",
            "0",
        ),
        ({**gslb_body("app"), "spec": {"ingress": {}}}, "spec.strategy", "FieldValueRequired", "required"),
        (
            {"metadata": {"name": "Bad_Name"}, "spec": {"strategy": {"type": "roundRobin"}}},
            "metadata.name",
            None,
            "RFC 1123",
        ),
        (
            {"metadata": {}, "spec": {"strategy": {"type": "roundRobin"}}},
            "metadata.name",
            "FieldValueRequired",
            "name",
        ),
        (
            {"metadata": {"generateName": "Web_"}, "spec": {"strategy": {"type": "roundRobin"}}},
            "metadata.generateName",
            "FieldValueInvalid",
            "RFC 1123",
        ),
    ],
)
async def test_invalid_names_the_field(
    api: Api, body: dict[str, Any], field: str, cause_reason: str | None, message_part: str
) -> None:
    status = assert_status(await api.client.post(COLLECTION, json=body), 422, "Invalid")
    causes = status["details"]["causes"]
    assert [c["field"] for c in causes] == [field]
    assert message_part in causes[0]["message"]
    if cause_reason:
        assert causes[0]["reason"] == cause_reason
    assert status["details"]["kind"] == "Gslb" and status["details"]["group"] == GROUP
    assert f"{field}: " in status["message"]
    await assert_nothing_stored(api)


async def test_missing_path_type_is_named_with_indices(api: Api) -> None:
    body = gslb_body("app")
    del body["spec"]["ingress"]["rules"][0]["http"]["paths"][0]["pathType"]
    status = assert_status(await api.client.post(COLLECTION, json=body), 422, "Invalid")
    assert [c["field"] for c in status["details"]["causes"]] == [
        "spec.ingress.rules[0].http.paths[0].pathType"
    ]


async def test_invalid_put_and_patch_keep_the_stored_object(api: Api) -> None:
    created = (await api.client.post(COLLECTION, json=gslb_body("app"))).json()
    assert_status(await api.client.put(ITEM, json=with_strategy(type="nope")), 422, "Invalid")
    patch = {"spec": {"strategy": {"type": "failover", "weight": {"eu": 1}}}}
    merge = {"Content-Type": "application/merge-patch+json"}
    assert_status(await api.client.patch(ITEM, json=patch, headers=merge), 422, "Invalid")
    assert (await api.client.get(ITEM)).json() == created


@pytest.mark.parametrize(
    ("path", "body", "needle"),
    [
        (COLLECTION, gslb_body("app", namespace="elsewhere"), "namespace"),
        (COLLECTION, gslb_body("app", group=LEGACY_GROUP), "API version"),
        (f"/apis/{LEGACY_GROUP}/v1beta1/namespaces/test-gslb/gslbs", gslb_body("app"), "API version"),
        (COLLECTION, {**gslb_body("app"), "kind": "Ingress"}, "kind"),
    ],
)
async def test_identity_must_match_the_url(api: Api, path: str, body: dict[str, Any], needle: str) -> None:
    status = assert_status(await api.client.post(path, json=body), 400, "BadRequest")
    assert needle in status["message"]
    await assert_nothing_stored(api)


async def test_put_name_must_match_the_url(api: Api) -> None:
    await api.client.post(COLLECTION, json=gslb_body("app"))
    status = assert_status(await api.client.put(ITEM, json=gslb_body("other")), 400, "BadRequest")
    assert "does not match the name on the URL" in status["message"]


@pytest.mark.parametrize(
    ("content", "media", "needle"),
    [
        (
            b'{"metadata": {"name": "a"}, "metadata": {"name": "b"}}',
            "application/json",
            "duplicate field 'metadata'",
        ),
        (b"metadata:\n  name: a\n  name: b\nspec: {}\n", "application/yaml", "duplicate field 'name'"),
        (b'{"metadata": ', "application/json", "not valid JSON"),
        (b"a: [unclosed", "application/yaml", "not valid YAML"),
        (b"a: &x [1]\nb: *x\n", "application/yaml", "aliases"),
        (b"---\na: 1\n---\nb: 2\n", "application/yaml", "not valid YAML"),
        (b"[1, 2]", "application/json", "must be an object"),
        (b"", "application/json", "empty"),
        (b'{"a": NaN}', "application/json", "NaN"),
        (b"\xff\xfe", "application/json", "UTF-8"),
    ],
)
async def test_unparsable_bodies_are_400(api: Api, content: bytes, media: str, needle: str) -> None:
    status = assert_status(
        await api.client.post(COLLECTION, content=content, headers={"Content-Type": media}), 400, "BadRequest"
    )
    assert needle in status["message"]
    await assert_nothing_stored(api)


async def test_yaml_timestamps_stay_strings(api: Api) -> None:
    text = manifest("roundrobin.yaml").replace(
        "  namespace: test-gslb\n", "  namespace: test-gslb\n  annotations:\n    when: 2024-01-01T00:00:00Z\n"
    )
    response = await api.client.post(COLLECTION, content=text, headers={"Content-Type": "application/yaml"})
    assert response.status_code == 201, response.text
    assert response.json()["metadata"]["annotations"]["when"] == "2024-01-01T00:00:00Z"


async def test_yaml_base_60_numbers_stay_strings_as_the_api_server_reads_them(api: Api) -> None:
    """YAML 1.1 reads `12:30` as 750; the API server's decoder (and YAML 1.2) as the text it is."""
    text = manifest("roundrobin.yaml").replace(
        "  namespace: test-gslb\n", "  namespace: test-gslb\n  annotations:\n    window: 12:30\n"
    )
    response = await api.client.post(COLLECTION, content=text, headers={"Content-Type": "application/yaml"})
    assert response.status_code == 201, response.text
    assert response.json()["metadata"]["annotations"]["window"] == "12:30"


async def test_an_explicit_base_60_integer_is_refused_not_computed(api: Api) -> None:
    """PyYAML computes `!!int 1:0:0:...` in time quadratic in its length: a 1 MB body took 25 s."""
    body = b"metadata: {name: x}\nspec: {n: !!int 1" + b":0" * 400_000 + b"}\n"
    status = assert_status(
        await api.client.post(COLLECTION, content=body, headers={"Content-Type": "application/yaml"}),
        400,
        "BadRequest",
    )
    assert "base-60 integer" in status["message"]
    await assert_nothing_stored(api)


async def test_a_large_yaml_body_is_parsed_while_other_requests_are_answered(api: Api) -> None:
    """PyYAML is pure Python: parsing a large body on the event loop held every other request (and the
    controller, and the probes) until it was done."""
    body = b"metadata: {name: big}\nspec: {many: [" + b",".join([b"1"] * 60_000) + b"]}\n"
    done: list[str] = []

    async def post() -> None:
        await api.client.post(COLLECTION, content=body, headers={"Content-Type": "application/yaml"})
        done.append("post")

    async def probe() -> None:
        await asyncio.sleep(0.2)  # the POST is being parsed by now
        assert (await api.client.get("/healthz")).status_code == 200
        done.append("healthz")

    await asyncio.gather(post(), probe())
    assert done == ["healthz", "post"]


@pytest.mark.parametrize("media", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
async def test_unknown_media_type_on_create_is_415(api: Api, media: str) -> None:
    response = await api.client.post(
        COLLECTION, content=json.dumps(gslb_body("app")), headers={"Content-Type": media}
    )
    assert_status(response, 415, "UnsupportedMediaType")


async def test_missing_content_type_is_taken_as_json(api: Api) -> None:
    response = await api.client.post(COLLECTION, content=json.dumps(gslb_body("app")).encode())
    assert response.status_code == 201


async def test_body_over_the_limit_is_413(serve: ServeFactory) -> None:
    api = await serve(max_body=2048)
    body = gslb_body("app")
    body["metadata"]["annotations"] = {"filler": "x" * 4000}
    status = assert_status(await api.client.post(COLLECTION, json=body), 413, "RequestEntityTooLarge")
    assert "2048" in status["message"]

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the stream itself is counted
        data = json.dumps(body).encode()
        for start in range(0, len(data), 512):
            yield data[start : start + 512]

    async with httpx.AsyncClient(base_url=api.base_url) as fresh:
        chunked = await fresh.post(COLLECTION, content=chunks(), headers={"Content-Type": "application/json"})
    assert "content-length" not in chunked.request.headers
    assert_status(chunked, 413, "RequestEntityTooLarge")
    await assert_nothing_stored(api)

    small = gslb_body("small")
    assert (await api.client.post(COLLECTION, json=small)).status_code == 201  # under the limit: fine


async def test_unknown_route_and_method_are_statuses(api: Api) -> None:
    assert_status(await api.client.get("/apis/example.com/v1/things"), 404, "NotFound")
    not_allowed = await api.client.post(f"/apis/{GROUP}/v1beta1/gslbs", json={})
    assert_status(not_allowed, 405, "MethodNotAllowed")
    assert not_allowed.headers["allow"] == "GET"
    on_item = await api.client.post(ITEM, json={})
    assert_status(on_item, 405, "MethodNotAllowed")
    assert on_item.headers["allow"] == "DELETE, GET, PATCH, PUT"  # every route at the path, not the first


async def test_invalid_path_names_are_422(api: Api) -> None:
    status = assert_status(
        await api.client.get(f"/apis/{GROUP}/v1beta1/namespaces/Bad_NS/gslbs/x"), 422, "Invalid"
    )
    assert [c["field"] for c in status["details"]["causes"]] == ["path.namespace"]
    status = assert_status(
        await api.client.put(f"{COLLECTION}/UPPER", json=gslb_body("UPPER")), 422, "Invalid"
    )
    assert [c["field"] for c in status["details"]["causes"]] == ["path.name"]


@pytest.mark.parametrize("framing", ["content-length: 5000", "transfer-encoding: chunked"])
async def test_a_client_that_leaves_mid_body_is_not_a_server_error(
    api: Api, caplog: pytest.LogCaptureFixture, framing: str
) -> None:
    """Nothing arrived, nothing is stored, and no unhandled-error traceback is logged (it was a 500)."""
    caplog.set_level(logging.INFO, logger="app.api.errors")
    host, port = api.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    head = f"POST /apis/{GROUP}/v1beta1/namespaces/default/gslbs HTTP/1.1\r\nHost: x\r\n"
    partial = b'{"apiVersion": "k8' if "length" in framing else b'20\r\n{"apiVersion": "k8'
    writer.write(f"{head}content-type: application/json\r\n{framing}\r\n\r\n".encode() + partial)
    await writer.drain()
    await asyncio.sleep(0.1)  # the handler is now waiting for the rest of the body
    writer.close()
    await writer.wait_closed()
    async with asyncio.timeout(5):
        while not any(r.name == "app.api.errors" for r in caplog.records):
            await asyncio.sleep(0.02)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert any("client went away during POST" in r.getMessage() for r in caplog.records)
    listed = await api.client.get(f"/apis/{GROUP}/v1beta1/gslbs")
    assert listed.status_code == 200 and listed.json()["items"] == []


async def test_a_body_that_trickles_in_too_slowly_is_408_and_the_connection_is_closed(
    serve: ServeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client sending a byte now and then (slowloris) no longer holds a handler for ever."""
    import app.api.limits

    monkeypatch.setattr(app.api.limits, "BODY_SECONDS", 0.5)
    api = await serve()
    host, port = api.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    head = f"POST /apis/{GROUP}/v1beta1/namespaces/default/gslbs HTTP/1.1\r\nHost: x\r\n"
    writer.write(f"{head}content-type: application/json\r\ncontent-length: 5000\r\n\r\n".encode() + b"{")
    await writer.drain()

    async def trickle() -> None:  # a byte every 0.1 s, past the deadline, until the server hangs up
        with contextlib.suppress(ConnectionError):
            for byte in b'"apiVersion": "k8gb.io/v1beta1", "kind": "Gslb"':
                await asyncio.sleep(0.1)
                writer.write(bytes([byte]))
                await writer.drain()

    sending = asyncio.create_task(trickle())
    async with asyncio.timeout(5):
        answer = await reader.read()  # the server answers, then closes
    sending.cancel()
    writer.close()
    head_text, _, body = answer.partition(b"\r\n\r\n")
    assert head_text.startswith(b"HTTP/1.1 408 "), answer
    assert b"connection: close" in head_text.lower()
    status = json.loads(body)
    assert (status["reason"], status["message"]) == (
        "Timeout",
        "the request body did not arrive within 0.5 s",
    )
    await assert_nothing_stored(api)
