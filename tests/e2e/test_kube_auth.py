"""`gslb serve` in kubernetes mode authenticates and authorizes REST requests through the API server:
TokenReview for the bearer token, SubjectAccessReview for the verb; what it allows lands as a Gslb custom
resource that kubectl sees."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.test_kube_serve import CRDS, kubectl
from tests.support.gslb_factory import gslb_body
from tests.support.instance import running
from tests.support.kmockapi import KubeApi, kube_mode_settings, running_api

pytestmark = pytest.mark.e2e
NS = "test-gslb"
COLLECTION = f"/apis/k8gb.io/v1beta1/namespaces/{NS}/gslbs"
ALICE, BOB = "alice-token-7c1d", "bob-token-29ae"


def token_reviews(api: KubeApi, token: str) -> int:
    return sum(
        1
        for r in api
        if r.resource is not None
        and r.resource.plural == "tokenreviews"
        and (r.data or {}).get("spec", {}).get("token") == token
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_status(response: httpx.Response, code: int, reason: str) -> dict[str, Any]:
    assert response.status_code == code, response.text
    status: dict[str, Any] = response.json()
    assert (status["kind"], status["code"], status["reason"]) == ("Status", code, reason)
    return status


async def test_rest_api_is_authorized_by_the_api_server(tmp_path) -> None:
    async with running_api(tmp_path) as api:
        api.install_crds(CRDS)
        api.access.add_token(ALICE, "alice", ["gslb-editors"])
        api.access.add_token(BOB, "bob")
        api.access.allow("gslb-editors", ["create", "get", "list"], namespace=NS)
        api.access.allow("bob", ["get", "list"], namespace=NS)
        async with (
            running(tmp_path, **kube_mode_settings(api)) as gslb,
            httpx.AsyncClient(base_url=gslb.api, timeout=10) as client,
        ):
            body = gslb_body("app", namespace=NS)

            # No token, or one the API server does not know: 401, for writes and reads alike.
            for request in (
                client.post(COLLECTION, json=body),
                client.post(COLLECTION, json=body, headers=bearer("forged")),
                client.get(f"{COLLECTION}/app"),
            ):
                response = await request
                assert_status(response, 401, "Unauthorized")
                assert response.headers["www-authenticate"].startswith("Bearer")
            assert api.get_object("k8gb.io", "gslbs", NS, "app") is None

            # Bob may read but not create: 403 naming him, the verb and the resource.
            status = assert_status(
                await client.post(COLLECTION, json=body, headers=bearer(BOB)), 403, "Forbidden"
            )
            assert status["message"] == (
                'gslbs.k8gb.io is forbidden: User "bob" cannot create resource "gslbs" '
                f'in API group "k8gb.io" in the namespace "{NS}"'
            )
            assert api.get_object("k8gb.io", "gslbs", NS, "app") is None

            # Alice (through her group) creates it; kubectl sees the custom resource.
            created = await client.post(COLLECTION, json=body, headers=bearer(ALICE))
            assert created.status_code == 201, created.text
            assert api.get_object("k8gb.io", "gslbs", NS, "app") is not None
            listed = await kubectl(api.kubeconfig, "get", "gslbs.k8gb.io", "-n", NS, "-o", "name")
            assert listed.split() == ["gslb.k8gb.io/app"]

            # Her second request within the cache's lifetime costs no second TokenReview.
            read = await client.get(f"{COLLECTION}/app", headers=bearer(ALICE))
            assert read.status_code == 200 and read.json()["metadata"]["name"] == "app"
            assert token_reviews(api, ALICE) == 1

            # Bob may read; he may not delete. Other namespaces are not his either.
            assert (await client.get(f"{COLLECTION}/app", headers=bearer(BOB))).status_code == 200
            status = assert_status(
                await client.delete(f"{COLLECTION}/app", headers=bearer(BOB)), 403, "Forbidden"
            )
            assert 'User "bob" cannot delete resource "gslbs"' in status["message"]
            assert status["details"] == {"name": "app", "group": "k8gb.io", "kind": "gslbs"}
            elsewhere = await client.get("/apis/k8gb.io/v1beta1/namespaces/other/gslbs", headers=bearer(BOB))
            assert_status(elsewhere, 403, "Forbidden")
            assert api.get_object("k8gb.io", "gslbs", NS, "app") is not None

            # Probes, metrics and the API description stay open.
            for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"):
                assert (await client.get(path)).status_code == 200, path


async def test_gslb_delete_by_a_user_who_may_delete_but_not_read(tmp_path) -> None:
    """Without --group the CLI first looks for the name in both groups; reads it may not make do not
    stop a delete it may make."""
    from tests.test_cli_apply import gslb_cli

    carol = "carol-token-51f0"
    async with running_api(tmp_path) as api:
        api.install_crds(CRDS)
        api.access.add_token(carol, "carol")
        api.access.allow("carol", ["delete"], namespace=NS)
        api.create_object("k8gb.io", "v1beta1", "gslbs", gslb_body("app", namespace=NS))
        async with running(tmp_path, **kube_mode_settings(api)) as gslb:
            code, out, err = await gslb_cli(
                "delete", "app", "-n", NS, "--server", gslb.api, GSLB_API_TOKEN=carol
            )
            assert (code, out) == (0, 'gslb.k8gb.io "app" deleted\n'), err
            assert api.get_object("k8gb.io", "gslbs", NS, "app") is None
