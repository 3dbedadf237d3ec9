"""The kubernetes-mode authorizer: TokenReview then SubjectAccessReview against the emulated API server,
and the short cache in front of both (a fake clock moves time; nothing here waits on a real one)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import kmock
import pytest
from kubernetes_asyncio import client as k8s_client

from app.stores.base import TooManyRequests, Unavailable
from app.stores.kube.auth import REVIEW_TIMEOUT, KubeAuthorizer, TtlCache, token_digest
from app.stores.kube.client import KubeClient
from tests.support.kmockapi import KubeApi

TOKEN = "alice-token-1f2e3d"
NS = "test-gslb"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def reviews(api: KubeApi, plural: str) -> list[Any]:
    return [r for r in api if r.resource is not None and r.resource.plural == plural]


# --- the cache ------------------------------------------------------------------------------------


async def test_cache_serves_a_value_until_its_ttl_passes() -> None:
    clock = Clock()
    cache: TtlCache[str, int] = TtlCache(10, 8, clock=clock)
    loads: list[str] = []

    async def load() -> int:
        loads.append("x")
        return len(loads)

    assert await cache.get("k", load) == 1
    clock.now += 9.9
    assert await cache.get("k", load) == 1
    clock.now += 0.2
    assert await cache.get("k", load) == 2
    assert (cache.hits, cache.misses) == (1, 2)


async def test_cache_is_bounded_and_evicts_the_least_recently_used() -> None:
    cache: TtlCache[int, int] = TtlCache(10, 2, clock=Clock())
    loaded: list[int] = []

    def loader(n: int) -> Any:
        async def load() -> int:
            loaded.append(n)
            return n

        return load

    await cache.get(1, loader(1))
    await cache.get(2, loader(2))
    await cache.get(1, loader(1))  # 1 is now the most recently used
    await cache.get(3, loader(3))  # evicts 2
    assert len(cache) == 2
    await cache.get(1, loader(1))
    await cache.get(2, loader(2))
    assert loaded == [1, 2, 3, 2]


async def test_concurrent_misses_share_one_load_and_failures_are_not_cached() -> None:
    cache: TtlCache[str, str] = TtlCache(10, 8, clock=Clock())
    gate = asyncio.Event()
    calls = 0

    async def slow() -> str:
        nonlocal calls
        calls += 1
        await gate.wait()
        return "v"

    waiting = [asyncio.create_task(cache.get("k", slow)) for _ in range(3)]
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(*waiting) == ["v", "v", "v"]
    assert calls == 1

    async def broken() -> str:
        raise Unavailable("down")

    with pytest.raises(Unavailable):
        await cache.get("other", broken)
    assert await cache.get("other", slow) == "v"  # the failure was not remembered


def test_cache_refuses_a_useless_configuration() -> None:
    with pytest.raises(ValueError):
        TtlCache(0, 8)
    with pytest.raises(ValueError):
        TtlCache(10, 0)


# --- the authorizer -------------------------------------------------------------------------------


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def authorizer(kube: KubeClient, clock: Clock) -> KubeAuthorizer:
    return KubeAuthorizer(kube, ttl=10, clock=clock)


async def test_no_token_is_unauthenticated_without_asking(
    kube_api: KubeApi, authorizer: KubeAuthorizer
) -> None:
    decision = await authorizer.authorize(None, "create", "k8gb.io", "gslbs", NS, None)
    assert (decision.allowed, decision.user) == (False, None)
    assert reviews(kube_api, "tokenreviews") == []


async def test_unknown_token_is_unauthenticated(kube_api: KubeApi, authorizer: KubeAuthorizer) -> None:
    decision = await authorizer.authorize("nobody-knows-me", "get", "k8gb.io", "gslbs", NS, "app")
    assert (decision.allowed, decision.user) == (False, None)
    assert reviews(kube_api, "subjectaccessreviews") == []


async def test_the_user_and_groups_of_the_token_are_reviewed_for_the_verb(
    kube_api: KubeApi, authorizer: KubeAuthorizer
) -> None:
    kube_api.access.add_token(TOKEN, "alice", ["gslb-editors"])
    kube_api.access.allow("gslb-editors", ["update"], resource="gslbs/status", namespace=NS)

    allowed = await authorizer.authorize(TOKEN, "update", "k8gb.io", "gslbs/status", NS, "app")
    denied = await authorizer.authorize(TOKEN, "update", "k8gb.io", "gslbs", NS, "app")

    assert (allowed.allowed, allowed.user) == (True, "alice")
    assert (denied.allowed, denied.user) == (False, "alice")
    sent = reviews(kube_api, "subjectaccessreviews")[0].data["spec"]
    assert sent["user"] == "alice" and "gslb-editors" in sent["groups"]
    assert sent["resourceAttributes"] == {
        "verb": "update",
        "group": "k8gb.io",
        "resource": "gslbs",
        "subresource": "status",
        "namespace": NS,
        "name": "app",
    }


async def test_reviews_are_cached_briefly_and_never_under_the_token(
    kube_api: KubeApi, authorizer: KubeAuthorizer, clock: Clock
) -> None:
    kube_api.access.add_token(TOKEN, "alice")
    kube_api.access.allow("alice", ["get", "list"], namespace=NS)

    for _ in range(3):
        assert (await authorizer.authorize(TOKEN, "get", "k8gb.io", "gslbs", NS, "app")).allowed
    assert (await authorizer.authorize(TOKEN, "list", "k8gb.io", "gslbs", NS, None)).allowed
    assert len(reviews(kube_api, "tokenreviews")) == 1
    assert len(reviews(kube_api, "subjectaccessreviews")) == 2  # one per distinct operation
    assert all(TOKEN not in repr(key) for key in authorizer.identities._entries)
    assert token_digest(TOKEN) in authorizer.identities._entries

    clock.now += 11
    kube_api.access.tokens.clear()  # the token was revoked meanwhile
    decision = await authorizer.authorize(TOKEN, "get", "k8gb.io", "gslbs", NS, "app")
    assert (decision.allowed, decision.user) == (False, None)
    assert len(reviews(kube_api, "tokenreviews")) == 2


async def test_an_api_server_that_cannot_answer_makes_it_unavailable_not_allowed(
    kube_api: KubeApi, authorizer: KubeAuthorizer
) -> None:
    kube_api.access.add_token(TOKEN, "alice")
    kube_api.next_request(kmock.resource("authentication.k8s.io", "v1", "tokenreviews")) << 503
    with pytest.raises(Unavailable):
        await authorizer.authorize(TOKEN, "create", "k8gb.io", "gslbs", NS, None)
    kube_api.access.allow("alice", ["create"])
    assert (await authorizer.authorize(TOKEN, "create", "k8gb.io", "gslbs", NS, None)).allowed


@pytest.fixture
async def refusing() -> AsyncIterator[KubeClient]:
    """A client of an API server whose port refuses connections (bound, then closed: nothing listens)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    configuration = k8s_client.Configuration()
    configuration.host = f"http://127.0.0.1:{port}"
    client = KubeClient(k8s_client.ApiClient(configuration))
    try:
        yield client
    finally:
        await client.close()


async def test_an_api_server_that_refuses_the_connection_is_named_as_the_reason(
    refusing: KubeClient,
) -> None:
    authorizer = KubeAuthorizer(refusing)
    with pytest.raises(Unavailable) as refused:
        await authorizer.authorize(TOKEN, "get", "k8gb.io", "gslbs", NS, "app")
    host = refusing.api_client.configuration.host.removeprefix("http://")
    assert str(refused.value) == (
        "TokenReview failed: ServiceUnavailable: POST /apis/authentication.k8s.io/v1/tokenreviews: "
        f"cannot connect to {host}: connection refused"
    )
    # and one that does not answer would be given up on long before the client's own timeout
    assert authorizer.review_timeout == REVIEW_TIMEOUT < refusing.request_timeout / 5


async def test_tokens_not_reviewed_lately_are_reviewed_at_a_bounded_rate(
    kube_api: KubeApi, kube: KubeClient, clock: Clock
) -> None:
    """A token bucket as deep as one second's worth; beyond it TooManyRequests (429), never a review."""
    authorizer = KubeAuthorizer(kube, reviews_per_second=5, clock=clock)
    kube_api.access.add_token(TOKEN, "alice")
    kube_api.access.allow("alice", ["get"], namespace=NS)
    for n in range(5):
        decision = await authorizer.authorize(f"made-up-{n}", "get", "k8gb.io", "gslbs", NS, "app")
        assert decision.user is None
    with pytest.raises(TooManyRequests) as throttled:
        await authorizer.authorize(TOKEN, "get", "k8gb.io", "gslbs", NS, "app")
    assert throttled.value.retry_after == 1
    assert len(reviews(kube_api, "tokenreviews")) == 5
    for n in range(5):  # rejected ones are remembered too: no review, no token from the bucket
        assert (await authorizer.authorize(f"made-up-{n}", "get", "k8gb.io", "gslbs", NS, "app")).user is None

    clock.now += 0.2  # one more token in the bucket
    assert (await authorizer.authorize(TOKEN, "get", "k8gb.io", "gslbs", NS, "app")).allowed
    assert len(reviews(kube_api, "tokenreviews")) == 6


async def test_rejected_tokens_never_evict_the_reviews_of_accepted_ones(
    kube_api: KubeApi, kube: KubeClient, clock: Clock
) -> None:
    authorizer = KubeAuthorizer(kube, ttl=10, capacity=8, clock=clock)
    kube_api.access.add_token(TOKEN, "alice")
    kube_api.access.allow("alice", ["get"], namespace=NS)
    assert (await authorizer.authorize(TOKEN, "get", "k8gb.io", "gslbs", NS, "app")).allowed
    for n in range(100):  # far more made-up tokens than the cache holds, within the review rate
        clock.now += 0.05
        assert (await authorizer.authorize(f"made-up-{n}", "get", "k8gb.io", "gslbs", NS, "app")).user is None

    assert (await authorizer.authorize(TOKEN, "get", "k8gb.io", "gslbs", NS, "app")).allowed
    assert len(reviews(kube_api, "tokenreviews")) == 101  # alice's one review still serves her


async def test_a_flood_of_made_up_tokens_never_locks_out_a_user_already_reviewed(
    kube_api: KubeApi, kube: KubeClient, clock: Clock
) -> None:
    """One bucket for every new token: made-up ones (no credentials needed) drained it, and a user whose
    10 s cached review expired got 429 for as long as the flood lasted."""
    authorizer = KubeAuthorizer(kube, ttl=10, clock=clock)  # 20 reviews a second
    kube_api.access.add_token(TOKEN, "alice")
    kube_api.access.allow("alice", ["get"], namespace=NS)
    assert (await authorizer.authorize(TOKEN, "get", "k8gb.io", "gslbs", NS, "app")).allowed
    refused = 0
    for tick in range(1, 601):  # 30 s, 40 made-up tokens a second
        clock.now += 0.05
        for _ in range(2):
            with contextlib.suppress(TooManyRequests):
                await authorizer.authorize(f"made-up-{tick}-{_}", "get", "k8gb.io", "gslbs", NS, "app")
        if tick % 20 == 0:  # alice, once a second
            try:
                assert (await authorizer.authorize(TOKEN, "get", "k8gb.io", "gslbs", NS, "app")).allowed
            except TooManyRequests:
                refused += 1
    assert refused == 0
