"""The REST API in kubernetes mode, in process: what a caller sees when the API server answers with an
error, or does not answer at all."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import kmock
import pytest

from app.api.main import create_app
from app.stores.kube.auth import KubeAuthorizer
from app.stores.kube.client import KubeClient
from app.stores.kube.store import KubeGslbStore
from tests.stores.kube.conftest import kube_settings
from tests.support.gslb_factory import gslb_body
from tests.support.kmockapi import KubeApi

NS = "test-gslb"
COLLECTION = f"/apis/k8gb.io/v1beta1/namespaces/{NS}/gslbs"
TOKEN = "alice-token-5b7e"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def rest(
    kube_api: KubeApi, kube: KubeClient, kube_store: KubeGslbStore
) -> AsyncIterator[httpx.AsyncClient]:
    kube_api.access.add_token(TOKEN, "alice")
    kube_api.access.allow("alice", ["*"], namespace=NS)
    authorizer = KubeAuthorizer(kube, review_timeout=0.3)  # REVIEW_TIMEOUT's 5 s, shortened for the test
    app = create_app(settings=kube_settings(), store=kube_store, authorizer=authorizer)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gslb", headers=AUTH) as client:
        yield client


async def test_a_stale_put_shows_the_api_servers_conflict_message_once(rest: httpx.AsyncClient) -> None:
    created = await rest.post(COLLECTION, json=gslb_body("rest-one", namespace=NS))
    assert created.status_code == 201, created.text
    body = created.json()
    body["spec"]["ingress"]["rules"][0]["host"] = "changed.cloud.example.com"
    assert (await rest.put(f"{COLLECTION}/rest-one", json=body)).status_code == 200

    stale = await rest.put(f"{COLLECTION}/rest-one", json=body)  # still names the first resourceVersion

    assert stale.status_code == 409, stale.text
    assert (stale.json()["reason"], stale.json()["message"]) == (
        "Conflict",
        'Operation cannot be fulfilled on gslbs.k8gb.io "rest-one": the object has been modified; '
        "please apply your changes to the latest version and try again",
    )


async def test_a_review_the_api_server_does_not_answer_fails_fast_and_says_why(
    kube_api: KubeApi, rest: httpx.AsyncClient
) -> None:
    never = asyncio.Event()
    kube_api.next_request(kmock.resource("authentication.k8s.io", "v1", "tokenreviews")) << never.wait

    started = time.monotonic()
    response = await rest.get(f"{COLLECTION}/anything")
    elapsed = time.monotonic() - started

    never.set()
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "1"
    assert response.json()["message"] == (
        "cannot authorize the request now: TokenReview failed: ServiceUnavailable: "
        "POST /apis/authentication.k8s.io/v1/tokenreviews: timed out after 0.3 s"
    )
    assert elapsed < 5


async def test_made_up_tokens_cost_a_bounded_number_of_token_reviews_and_beyond_it_429(
    kube_api: KubeApi, kube: KubeClient, kube_store: KubeGslbStore
) -> None:
    """Anyone can send a new token: 500 of them cost at most GSLB_API_TOKEN_REVIEWS_PER_SECOND (20) a
    second of TokenReviews (500 before), the rest are told to come back as the API server tells a flood;
    and a user reviewed before the flood is still served from the cache."""
    kube_api.access.add_token(TOKEN, "alice")
    kube_api.access.allow("alice", ["*"], namespace=NS)
    settings = kube_settings()
    authorizer = KubeAuthorizer(kube, reviews_per_second=settings.gslb_api_token_reviews_per_second)
    app = create_app(settings=settings, store=kube_store, authorizer=authorizer)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gslb", headers=AUTH) as rest:
        await _flood_with_made_up_tokens(kube_api, rest)


async def _flood_with_made_up_tokens(kube_api: KubeApi, rest: httpx.AsyncClient) -> None:
    assert (await rest.get(COLLECTION)).status_code == 200  # alice, reviewed once
    reviewed_before = len(_token_reviews(kube_api))

    started = time.monotonic()
    answers = await asyncio.gather(
        *(rest.get(COLLECTION, headers={"Authorization": f"Bearer made-up-{n}"}) for n in range(500))
    )
    elapsed = time.monotonic() - started

    reviews = len(_token_reviews(kube_api)) - reviewed_before
    assert reviews <= 20 + 20 * elapsed + 1, (reviews, elapsed)
    codes = [answer.status_code for answer in answers]
    assert set(codes) == {401, 429} and codes.count(401) == reviews
    throttled = next(answer for answer in answers if answer.status_code == 429)
    assert throttled.headers["retry-after"] == "1"
    status = throttled.json()
    assert (status["reason"], status["code"], status["details"]["retryAfterSeconds"]) == (
        "TooManyRequests",
        429,
        1,
    )
    assert status["message"].startswith("Too many requests, please try again later")

    assert (await rest.get(COLLECTION)).status_code == 200
    assert len(_token_reviews(kube_api)) - reviewed_before == reviews  # alice's review was not evicted


def _token_reviews(kube_api: KubeApi) -> list[object]:
    return [r for r in kube_api if r.resource is not None and r.resource.plural == "tokenreviews"]
