"""With GSLB_API_TOKEN set, every write needs the bearer token; reads stay open."""

from __future__ import annotations

import pytest

from app.domain.gslb import GROUP
from tests.support.api_server import Api, ServeFactory
from tests.support.gslb_factory import gslb_body

TOKEN = "s3cret-token"
COLLECTION = f"/apis/{GROUP}/v1beta1/namespaces/test-gslb/gslbs"
ITEM = f"{COLLECTION}/app"
MERGE = {"Content-Type": "application/merge-patch+json"}


@pytest.fixture
async def secured(serve: ServeFactory) -> Api:
    api = await serve(token=TOKEN)
    seeded = await api.client.post(
        COLLECTION, json=gslb_body("app"), headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert seeded.status_code == 201
    return api


WRITES = [
    ("POST", COLLECTION, gslb_body("new")),
    ("PUT", ITEM, gslb_body("app", strategy="geoip")),
    ("PATCH", ITEM, {"metadata": {"labels": {"a": "b"}}}),
    ("PUT", f"{ITEM}/status", {"status": {"geoTag": "eu"}}),
    ("DELETE", ITEM, None),
]


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer"]
)
async def test_write_without_the_token_is_401(
    secured: Api, method: str, path: str, body: object, authorization: str | None
) -> None:
    headers = {**MERGE} if method == "PATCH" else {}
    if authorization:
        headers["Authorization"] = authorization
    response = await secured.client.request(method, path, json=body, headers=headers)
    assert response.status_code == 401, response.text
    status = response.json()
    assert (status["kind"], status["reason"], status["code"]) == ("Status", "Unauthorized", 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
    stored = (await secured.client.get(ITEM)).json()
    assert stored["metadata"]["resourceVersion"] == "1" and "labels" not in stored["metadata"]


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
async def test_write_with_the_token_goes_through(secured: Api, method: str, path: str, body: object) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}", **(MERGE if method == "PATCH" else {})}
    response = await secured.client.request(method, path, json=body, headers=headers)
    assert response.status_code in (200, 201), response.text


async def test_reads_are_open(secured: Api) -> None:
    for path in (ITEM, f"{ITEM}/status", COLLECTION, f"/apis/{GROUP}/v1beta1/gslbs", "/apis", "/healthz"):
        assert (await secured.client.get(path)).status_code == 200, path


async def test_no_token_configured_means_open_writes(api: Api) -> None:
    assert (await api.client.post(COLLECTION, json=gslb_body("app"))).status_code == 201
