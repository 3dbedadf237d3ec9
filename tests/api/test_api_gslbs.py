"""Gslb CRUD over HTTP as a Kubernetes client sees it, for both API groups."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
import yaml

from app.domain.gslb import GROUP, LEGACY_GROUP
from tests.support.api_server import Api, manifest, manifest_dict
from tests.support.gslb_factory import gslb_body

YAML = {"Content-Type": "application/yaml"}
MERGE = {"Content-Type": "application/merge-patch+json"}
GROUPS = pytest.mark.parametrize("group", [GROUP, LEGACY_GROUP])


def collection(group: str, namespace: str = "test-gslb") -> str:
    return f"/apis/{group}/v1beta1/namespaces/{namespace}/gslbs"


def item(group: str, name: str, namespace: str = "test-gslb") -> str:
    return f"{collection(group, namespace)}/{name}"


async def create(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    group = body["apiVersion"].split("/")[0]
    response = await api.client.post(
        collection(group, body["metadata"].get("namespace", "test-gslb")), json=body
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


@pytest.mark.parametrize(
    ("fixture", "group", "ttl"),
    [
        ("roundrobin.yaml", GROUP, 30),  # defaulted
        ("failover.yaml", GROUP, 5),
        ("weighted.yaml", GROUP, 10),
        ("legacy-absa.yaml", LEGACY_GROUP, 30),
    ],
)
async def test_create_yaml_manifest_then_read_it_back(api: Api, fixture: str, group: str, ttl: int) -> None:
    sent = manifest_dict(fixture)
    response = await api.client.post(collection(group), content=manifest(fixture), headers=YAML)
    assert response.status_code == 201, response.text
    created = response.json()

    assert created["apiVersion"] == f"{group}/v1beta1" and created["kind"] == "Gslb"
    meta = created["metadata"]
    assert meta["name"] == sent["metadata"]["name"] and meta["namespace"] == "test-gslb"
    assert meta["generation"] == 1 and meta["resourceVersion"].isdigit() and meta["uid"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", meta["creationTimestamp"])
    assert created["spec"]["strategy"]["dnsTtlSeconds"] == ttl
    assert created["spec"]["ingress"] == sent["spec"]["ingress"]
    assert "status" not in created

    got = await api.client.get(item(group, meta["name"]))
    assert got.status_code == 200 and got.json() == created
    via_status = await api.client.get(item(group, meta["name"]) + "/status")
    assert via_status.status_code == 200 and via_status.json() == created


@pytest.mark.parametrize("media", ["application/x-yaml", "text/yaml", "application/json; charset=utf-8"])
async def test_other_accepted_media_types(api: Api, media: str) -> None:
    body = gslb_body("media")
    text = yaml.safe_dump(body) if "yaml" in media else __import__("json").dumps(body)
    response = await api.client.post(collection(GROUP), content=text, headers={"Content-Type": media})
    assert response.status_code == 201, response.text


async def test_namespace_defaults_to_the_path(api: Api) -> None:
    response = await api.client.post(collection(GROUP, "team-a"), json=gslb_body("x", namespace=None))
    assert response.status_code == 201
    assert response.json()["metadata"]["namespace"] == "team-a"


async def test_same_name_in_both_groups_are_separate_objects(api: Api) -> None:
    ours = await create(api, gslb_body("app", group=GROUP))
    legacy = await create(api, gslb_body("app", group=LEGACY_GROUP, strategy="failover", primaryGeoTag="us"))
    assert ours["metadata"]["uid"] != legacy["metadata"]["uid"]
    assert (await api.client.get(item(LEGACY_GROUP, "app"))).json()["spec"]["strategy"]["type"] == "failover"
    assert (await api.client.get(item(GROUP, "app"))).json()["spec"]["strategy"]["type"] == "roundRobin"


@GROUPS
async def test_lists(api: Api, group: str) -> None:
    await create(api, gslb_body("b", group=group, namespace="ns2"))
    await create(api, gslb_body("z", group=group))
    await create(api, gslb_body("a", group=group))
    other = LEGACY_GROUP if group == GROUP else GROUP
    last = await create(api, gslb_body("other-group", group=other))

    everything = (await api.client.get(f"/apis/{group}/v1beta1/gslbs")).json()
    assert everything["kind"] == "GslbList" and everything["apiVersion"] == f"{group}/v1beta1"
    assert [(g["metadata"]["namespace"], g["metadata"]["name"]) for g in everything["items"]] == [
        ("ns2", "b"),
        ("test-gslb", "a"),
        ("test-gslb", "z"),
    ]
    assert everything["metadata"]["resourceVersion"] == last["metadata"]["resourceVersion"]
    namespaced = (await api.client.get(collection(group))).json()
    assert [g["metadata"]["name"] for g in namespaced["items"]] == ["a", "z"]
    empty = (await api.client.get(collection(group, "nobody"))).json()
    assert empty["items"] == []


@GROUPS
async def test_put_with_resource_version_is_optimistic(api: Api, group: str) -> None:
    created = await create(api, gslb_body("app", group=group))
    change = {**created, "spec": {**created["spec"], "strategy": {"type": "geoip"}}}

    first = await api.client.put(item(group, "app"), json=change)
    assert first.status_code == 200, first.text
    assert first.json()["metadata"]["generation"] == 2
    assert first.json()["spec"]["strategy"] == {"type": "geoip", "dnsTtlSeconds": 30}

    stale = await api.client.put(item(group, "app"), json=change)  # still names the old resourceVersion
    assert stale.status_code == 409
    status = stale.json()
    assert status["kind"] == "Status" and status["reason"] == "Conflict" and status["status"] == "Failure"
    assert status["details"] == {"name": "app", "group": group, "kind": "gslbs"}
    assert "the object has been modified" in status["message"]
    assert (await api.client.get(item(group, "app"))).json() == first.json()


async def test_put_without_resource_version_is_last_write_wins(api: Api) -> None:
    await create(api, gslb_body("app"))
    for strategy in ("geoip", "failover"):
        response = await api.client.put(item(GROUP, "app"), json=gslb_body("app", strategy=strategy))
        assert response.status_code == 200, response.text
    stored = (await api.client.get(item(GROUP, "app"))).json()
    assert stored["spec"]["strategy"]["type"] == "failover"
    assert stored["metadata"]["generation"] == 3


async def test_concurrent_unconditional_writes_all_succeed_and_none_is_lost(api: Api) -> None:
    """Merge patches and PUTs without resourceVersion never answer 409, however many arrive at once, and
    each patch's change survives the others (the object's writes take turns, re-applied when needed)."""
    await create(api, gslb_body("app"))
    patches = [
        api.client.patch(item(GROUP, "app"), json={"metadata": {"labels": {f"l{i}": "x"}}}, headers=MERGE)
        for i in range(12)
    ]
    patched = await asyncio.gather(*patches)
    assert [r.status_code for r in patched] == [200] * 12, [r.text for r in patched if r.status_code != 200]
    labels = (await api.client.get(item(GROUP, "app"))).json()["metadata"]["labels"]
    assert {f"l{i}" for i in range(12)} <= set(labels)
    replaced = await asyncio.gather(
        *(
            api.client.put(item(GROUP, "app"), json=gslb_body("app", strategy=strategy))
            for strategy in ("geoip", "failover", "roundRobin") * 2
        )
    )
    assert [r.status_code for r in replaced] == [200] * 6, [r.text for r in replaced if r.status_code != 200]


async def test_put_missing_object_is_404(api: Api) -> None:
    response = await api.client.put(item(GROUP, "ghost"), json=gslb_body("ghost"))
    assert response.status_code == 404
    assert response.json()["details"] == {"name": "ghost", "group": GROUP, "kind": "gslbs"}


@GROUPS
@pytest.mark.parametrize("media", ["application/merge-patch+json", "application/json"])
async def test_merge_patch(api: Api, group: str, media: str) -> None:
    body = gslb_body("app", group=group)
    body["metadata"]["annotations"] = {"keep": "1", "drop": "2"}
    created = await create(api, body)
    patch = {
        "metadata": {"annotations": {"drop": None, "add": "3"}, "labels": {"team": "a"}},
        "spec": {"strategy": {"type": "failover", "primaryGeoTag": "eu"}},
    }
    response = await api.client.patch(
        item(group, "app"), content=__import__("json").dumps(patch), headers={"Content-Type": media}
    )
    assert response.status_code == 200, response.text
    patched = response.json()
    annotations = {
        k: v for k, v in patched["metadata"]["annotations"].items() if not k.startswith("k8gb.io/")
    }
    assert annotations == {"keep": "1", "add": "3"}
    assert patched["metadata"]["labels"] == {"team": "a"}
    assert patched["spec"]["strategy"] == {"type": "failover", "primaryGeoTag": "eu", "dnsTtlSeconds": 30}
    assert patched["spec"]["ingress"] == created["spec"]["ingress"]  # untouched parts stay
    assert patched["metadata"]["generation"] == 2


async def test_merge_patch_resource_version_is_a_precondition(api: Api) -> None:
    created = await create(api, gslb_body("app"))
    await api.client.patch(item(GROUP, "app"), json={"metadata": {"labels": {"a": "b"}}}, headers=MERGE)
    stale = {"metadata": {"resourceVersion": created["metadata"]["resourceVersion"], "labels": {"a": "c"}}}
    response = await api.client.patch(item(GROUP, "app"), json=stale, headers=MERGE)
    assert response.status_code == 409
    assert (await api.client.get(item(GROUP, "app"))).json()["metadata"]["labels"] == {"a": "b"}


async def test_patch_deleting_a_required_field_is_invalid(api: Api) -> None:
    await create(api, gslb_body("app"))
    response = await api.client.patch(item(GROUP, "app"), json={"spec": {"strategy": None}}, headers=MERGE)
    assert response.status_code == 422
    assert [c["field"] for c in response.json()["details"]["causes"]] == ["spec.strategy"]


@pytest.mark.parametrize(
    "media",
    [
        "application/strategic-merge-patch+json",
        "application/json-patch+json",
        "application/yaml",
        "text/plain",
    ],
)
async def test_patch_other_media_types_are_415(api: Api, media: str) -> None:
    await create(api, gslb_body("app"))
    response = await api.client.patch(item(GROUP, "app"), content=b"{}", headers={"Content-Type": media})
    assert response.status_code == 415
    assert response.json()["reason"] == "UnsupportedMediaType"
    assert "application/merge-patch+json" in response.json()["message"]


@GROUPS
async def test_delete_returns_the_object_then_404(api: Api, group: str) -> None:
    created = await create(api, gslb_body("app", group=group))
    response = await api.client.delete(item(group, "app"))
    assert response.status_code == 200
    assert response.json()["metadata"]["uid"] == created["metadata"]["uid"]
    gone = await api.client.get(item(group, "app"))
    assert gone.status_code == 404
    status = gone.json()
    assert status == {
        "apiVersion": "v1",
        "kind": "Status",
        "metadata": {},
        "status": "Failure",
        "message": f'gslbs.{group} "app" not found',
        "reason": "NotFound",
        "details": {"name": "app", "group": group, "kind": "gslbs"},
        "code": 404,
    }
    assert (await api.client.delete(item(group, "app"))).status_code == 404


async def test_delete_preconditions(api: Api) -> None:
    created = await create(api, gslb_body("app"))
    await api.client.patch(item(GROUP, "app"), json={"metadata": {"labels": {"a": "b"}}}, headers=MERGE)
    for preconditions in (
        {"resourceVersion": created["metadata"]["resourceVersion"]},
        {"uid": "not-the-uid"},
    ):
        response = await api.client.request(
            "DELETE", item(GROUP, "app"), json={"preconditions": preconditions}
        )
        assert response.status_code == 409, preconditions
    ok = await api.client.request(
        "DELETE", item(GROUP, "app"), json={"preconditions": {"uid": created["metadata"]["uid"]}}
    )
    assert ok.status_code == 200


@GROUPS
async def test_create_existing_is_409_already_exists(api: Api, group: str) -> None:
    await create(api, gslb_body("app", group=group))
    response = await api.client.post(collection(group), json=gslb_body("app", group=group))
    assert response.status_code == 409
    assert response.json()["reason"] == "AlreadyExists"
    assert response.json()["message"] == f'gslbs.{group} "app" already exists'


@GROUPS
async def test_status_subresource(api: Api, group: str) -> None:
    created = await create(api, gslb_body("app", group=group))
    status = {
        "geoTag": "eu",
        "serviceHealth": {"roundrobin.cloud.example.com": "Healthy"},
        "healthyRecords": {},
    }
    body = {**created, "spec": {"strategy": {"type": "geoip"}}, "status": status}  # spec here is ignored
    response = await api.client.put(item(group, "app") + "/status", json=body)
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["status"]["geoTag"] == "eu"
    assert updated["status"]["serviceHealth"] == {"roundrobin.cloud.example.com": "Healthy"}
    assert updated["spec"] == created["spec"]
    assert updated["metadata"]["generation"] == 1

    stale = await api.client.put(item(group, "app") + "/status", json=body)
    assert stale.status_code == 409

    bad = {"metadata": {"name": "app"}, "status": {"serviceHealth": {"h": "Sick"}}}
    invalid = await api.client.put(item(group, "app") + "/status", json=bad)
    assert invalid.status_code == 422
    assert [c["field"] for c in invalid.json()["details"]["causes"]] == ["status.serviceHealth.h"]
    for not_an_object in ([], 0, "", "garbage"):
        refused = await api.client.put(
            item(group, "app") + "/status", json={"metadata": {"name": "app"}, "status": not_an_object}
        )
        assert refused.status_code == 422, (not_an_object, refused.text)
    assert (await api.client.get(item(group, "app"))).json()["status"]["geoTag"] == "eu"

    # A create or a replace never writes status.
    replaced = await api.client.put(
        item(group, "app"), json={**gslb_body("app", group=group), "status": {"geoTag": "x"}}
    )
    assert replaced.json()["status"]["geoTag"] == "eu"


async def test_status_of_missing_object_is_404(api: Api) -> None:
    response = await api.client.put(item(GROUP, "ghost") + "/status", json={"status": {"geoTag": "eu"}})
    assert response.status_code == 404
    assert response.json()["reason"] == "NotFound"


async def test_generate_name(api: Api) -> None:
    body = gslb_body("ignored")
    body["metadata"] = {"generateName": "web-"}
    created = await create(api, body)
    assert re.fullmatch(r"web-[a-z0-9]{5}", created["metadata"]["name"])
    assert (await api.client.get(item(GROUP, created["metadata"]["name"]))).status_code == 200


async def test_list_selectors_filter_as_kubectl_expects(api: Api) -> None:
    for name, labels, namespace in (
        ("a", {"team": "net", "env": "prod"}, "test-gslb"),
        ("b", {"team": "web", "env": "prod"}, "test-gslb"),
        ("c", {}, "other"),
    ):
        body = gslb_body(name, namespace=namespace)
        body["metadata"]["labels"] = labels
        await create(api, body)

    async def names(url: str, **params: str) -> list[str]:
        response = await api.client.get(url, params=params)
        assert response.status_code == 200, response.text
        return [i["metadata"]["name"] for i in response.json()["items"]]

    everywhere = f"/apis/{GROUP}/v1beta1/gslbs"
    assert await names(everywhere, labelSelector="team=net") == ["a"]
    assert await names(everywhere, labelSelector="env=prod,team notin (net)") == ["b"]
    assert await names(everywhere, labelSelector="!team") == ["c"]
    assert await names(collection(GROUP), labelSelector="env in (prod)") == ["a", "b"]
    assert await names(everywhere, fieldSelector="metadata.namespace!=test-gslb") == ["c"]
    assert await names(collection(GROUP), fieldSelector="metadata.name=b") == ["b"]
    for params in ({"labelSelector": "!!bad"}, {"fieldSelector": "spec.strategy.type=failover"}):
        refused = await api.client.get(everywhere, params=params)
        assert refused.status_code == 400, refused.text
        assert refused.json()["reason"] == "BadRequest"


@pytest.mark.parametrize("path", [collection(GROUP), f"/apis/{GROUP}/v1beta1/gslbs"])
@pytest.mark.parametrize("value", ["true", "1", "t", "True", "TRUE"])
async def test_a_watch_is_refused_not_answered_with_a_list(api: Api, path: str, value: str) -> None:
    response = await api.client.get(path, params={"watch": value})
    assert response.status_code == 405
    assert (
        response.json()["reason"] == "MethodNotAllowed"
        and "watch is not served" in response.json()["message"]
    )
    assert (await api.client.get(path, params={"watch": "false"})).status_code == 200
