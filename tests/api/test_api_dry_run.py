"""`dryRun=All` (kubectl --dry-run=server): every write is checked and answered as it would be, and
nothing is stored or seen by the reconciler; any other value is refused rather than ignored."""

from __future__ import annotations

import asyncio

import pytest

from app.domain.gslb import GROUP
from app.stores.base import WatchEvent
from tests.api.test_api_gslbs import MERGE, collection, create, item
from tests.support.api_server import Api
from tests.support.gslb_factory import gslb_body

DRY = {"dryRun": "All"}


async def heard(api: Api, write) -> list[WatchEvent]:
    """The store's change feed around `write()`: what the reconciler would be told."""
    feed = api.store.watch()
    try:
        await write()
        events: list[WatchEvent] = []
        while True:
            try:
                events.append(await asyncio.wait_for(anext(feed), 0.2))
            except TimeoutError:
                return events
    finally:
        await feed.aclose()


async def test_a_dry_run_create_answers_the_object_and_stores_nothing(api: Api) -> None:
    async def write() -> None:
        response = await api.client.post(collection(GROUP), params=DRY, json=gslb_body("app"))
        assert response.status_code == 201, response.text
        answer = response.json()
        assert answer["metadata"]["name"] == "app" and answer["metadata"]["generation"] == 1
        assert "uid" not in answer["metadata"] and "resourceVersion" not in answer["metadata"]
        assert answer["spec"]["strategy"]["dnsTtlSeconds"] == 30  # defaulted as a real create

    assert await heard(api, write) == []
    assert (await api.client.get(item(GROUP, "app"))).status_code == 404
    assert (await api.client.get(collection(GROUP))).json()["items"] == []


async def test_a_dry_run_is_checked_like_the_write(api: Api) -> None:
    await create(api, gslb_body("app"))
    again = await api.client.post(collection(GROUP), params=DRY, json=gslb_body("app"))
    assert (again.status_code, again.json()["reason"]) == (409, "AlreadyExists")
    bad = gslb_body("other", dnsTtlSeconds=-5)
    invalid = await api.client.post(collection(GROUP), params=DRY, json=bad)
    assert invalid.status_code == 422 and "spec.strategy.dnsTtlSeconds" in invalid.text
    generated = gslb_body("x")
    generated["metadata"] = {"generateName": "web-"}
    named = (await api.client.post(collection(GROUP), params=DRY, json=generated)).json()["metadata"]
    assert named.get("name") is None and named["generateName"] == "web-"


@pytest.mark.parametrize("how", ["put", "patch", "status"])
async def test_a_dry_run_update_answers_the_change_and_keeps_the_object(api: Api, how: str) -> None:
    created = await create(api, gslb_body("app"))
    version = created["metadata"]["resourceVersion"]

    async def write() -> None:
        if how == "put":
            body = {
                **created,
                "spec": {**created["spec"], "strategy": {"type": "roundRobin", "dnsTtlSeconds": 99}},
            }
            response = await api.client.put(item(GROUP, "app"), params=DRY, json=body)
        elif how == "patch":
            patch = {"spec": {"strategy": {"dnsTtlSeconds": 99}}}
            response = await api.client.patch(item(GROUP, "app"), params=DRY, json=patch, headers=MERGE)
        else:
            body = {**created, "status": {"geoTag": "xx"}}
            response = await api.client.put(item(GROUP, "app") + "/status", params=DRY, json=body)
        assert response.status_code == 200, response.text
        answer = response.json()
        if how == "status":
            assert answer["status"]["geoTag"] == "xx"
        else:
            assert answer["spec"]["strategy"]["dnsTtlSeconds"] == 99 and answer["metadata"]["generation"] == 2
        assert answer["metadata"]["resourceVersion"] == version

    assert await heard(api, write) == []
    assert (await api.client.get(item(GROUP, "app"))).json() == created


@pytest.mark.parametrize("where", ["query", "DeleteOptions"])
async def test_a_dry_run_delete_keeps_the_object(api: Api, where: str) -> None:
    created = await create(api, gslb_body("app"))

    async def write() -> None:
        if where == "query":
            response = await api.client.delete(item(GROUP, "app"), params=DRY)
        else:
            options = {"kind": "DeleteOptions", "apiVersion": "v1", "dryRun": ["All"]}
            response = await api.client.request("DELETE", item(GROUP, "app"), json=options)
        assert response.status_code == 200, response.text
        assert response.json()["metadata"]["uid"] == created["metadata"]["uid"]

    assert await heard(api, write) == []
    assert (await api.client.get(item(GROUP, "app"))).json() == created


async def test_an_unknown_dry_run_or_propagation_value_is_a_400_and_writes_nothing(api: Api) -> None:
    refused = await api.client.post(collection(GROUP), params={"dryRun": "true"}, json=gslb_body("app"))
    assert refused.status_code == 400
    assert refused.json()["message"] == 'dryRun: Unsupported value: "true": supported values: "All"'
    assert (await api.client.get(item(GROUP, "app"))).status_code == 404

    await create(api, gslb_body("app"))
    for params, body in (
        ({"propagationPolicy": "Sideways"}, None),
        ({}, {"kind": "DeleteOptions", "propagationPolicy": "Sideways"}),
        ({}, {"kind": "DeleteOptions", "dryRun": ["Some"]}),
    ):
        response = await api.client.request("DELETE", item(GROUP, "app"), params=params, json=body)
        assert response.status_code == 400, (params, body)
        assert "Unsupported value" in response.json()["message"]
    assert (await api.client.get(item(GROUP, "app"))).status_code == 200
    orphaned = await api.client.delete(item(GROUP, "app"), params={"propagationPolicy": "Orphan"})
    assert orphaned.status_code == 200  # a valid policy: embedded mode has no dependents


async def test_a_dry_run_delete_stays_dry_when_the_object_reaches_its_precondition_meanwhile(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The handler reads the object, another write lands, then the store checks the precondition: that
    delete is the request's own, so it is a dry run too (it deleted for real)."""
    created = await create(api, gslb_body("app"))
    next_version = str(int(created["metadata"]["resourceVersion"]) + 1)
    real_get = api.store.get

    async def get_then_someone_writes(key):  # type: ignore[no-untyped-def]
        found = await real_get(key)
        monkeypatch.setattr(api.store, "get", real_get)
        labelled = found.model_copy(deep=True)
        labelled.metadata.labels = {"someone": "else"}
        await api.store.update(labelled)
        return found

    monkeypatch.setattr(api.store, "get", get_then_someone_writes)
    options = {"kind": "DeleteOptions", "dryRun": ["All"], "preconditions": {"resourceVersion": next_version}}
    response = await api.client.request("DELETE", item(GROUP, "app"), json=options)
    assert response.status_code == 200, response.text
    kept = await api.client.get(item(GROUP, "app"))
    assert kept.status_code == 200 and kept.json()["metadata"]["labels"] == {"someone": "else"}
