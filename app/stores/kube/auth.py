"""REST API requests judged as the API server judges its own: TokenReview, then SubjectAccessReview.

The bearer token is reviewed (authentication.k8s.io/v1) to learn the user and groups; the operation is
then reviewed for that user (authorization.k8s.io/v1) with the Kubernetes verb, the resource (`gslbs`,
`gslbs/status`), group, namespace and name, so RBAC written for kubectl governs the REST API as well.
There are no anonymous requests: without a token, or with one the review rejects, the answer is 401.

Both reviews are cached briefly (`ttl`, default 10 s; at most `capacity` entries each, least recently
used evicted), so a burst of requests costs one review of each kind; concurrent misses share one
request. Tokens the review rejects are remembered apart, in a small cache of their own, so a flood of
made-up tokens never evicts the users' reviews; and tokens not reviewed lately are reviewed at most
`reviews_per_second` a second (a token bucket as deep as one second's worth): beyond it the answer is
429 with Retry-After, as the API server's priority and fairness answers a flood, not 401, which would
tell a user whose token is good that it is not. Anyone can send a new token, so without the bound every
anonymous request was one TokenReview.

A review gets `REVIEW_TIMEOUT`, not the client's 30 s: a request waits on it. Tokens are cached under
their SHA-256 digest: a token is never a key, and never logged. The controller's service account needs
`create` on tokenreviews and subjectaccessreviews (the `system:auth-delegator` ClusterRole).

The reviews run with the caller's W3C baggage cleared: the instrumented client would otherwise copy
whatever `baggage` an unauthenticated caller sent onto the server's own requests to the API server.
The trace context stays, so the review spans remain in the caller's trace.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass

from opentelemetry import baggage, context

from app.stores.base import TooManyRequests, Unavailable
from app.stores.kube.client import KubeApiError, KubeClient, Obj, Resource

log = logging.getLogger("pygslb.kube.auth")

TOKEN_REVIEW = Resource("authentication.k8s.io", "v1", "tokenreviews", "TokenReview", namespaced=False)
ACCESS_REVIEW = Resource(
    "authorization.k8s.io", "v1", "subjectaccessreviews", "SubjectAccessReview", namespaced=False
)

# The API server answers a review from memory in milliseconds; one with no answer in 5 s is down or
# cut off, and every request waiting on it (and, through the shared miss, every request of that token)
# is better served by a prompt 503 with Retry-After than by hanging for the client's 30 s.
REVIEW_TIMEOUT = 5.0
THROTTLE_LOG_SECONDS = 60.0
KNOWN_GOOD_SECONDS = 600.0  # how long an accepted token skips the review rate limit


class TtlCache[K: Hashable, V]:
    """Values that live `ttl` seconds, at most `capacity` of them; one load per key at a time."""

    def __init__(self, ttl: float, capacity: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        if ttl <= 0 or capacity < 1:
            raise ValueError("need ttl > 0 and capacity >= 1")
        self.ttl = ttl
        self.capacity = capacity
        self.clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._loading: dict[K, asyncio.Future[V]] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def fresh(self, key: K) -> bool:
        """Whether `key` has a value that has not expired (counted as a hit)."""
        entry = self._entries.get(key)
        if entry is None or entry[0] <= self.clock():
            return False
        self._entries.move_to_end(key)
        self.hits += 1
        return True

    def put(self, key: K, value: V) -> None:
        self._entries[key] = (self.clock() + self.ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    async def get(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        """The cached value, else `await load()` (shared by concurrent callers; failures not cached)."""
        now = self.clock()
        entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[1]
        if entry is not None:
            del self._entries[key]
        pending = self._loading.get(key)
        if pending is not None:
            self.hits += 1
            return await asyncio.shield(pending)
        self.misses += 1
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        try:
            value = await load()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here, so no "never retrieved" warning without waiters
            raise
        finally:
            self._loading.pop(key, None)
        future.set_result(value)
        self.put(key, value)
        return value


class TokenBucket:
    """`rate` takes a second, at most `rate` at once (a bucket as deep as one second's worth)."""

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError("need rate > 0")
        self.rate = rate
        self.depth = max(1.0, rate)
        self.clock = clock
        self._tokens = self.depth
        self._at = clock()

    def take(self) -> float:
        """0 when one was taken, else the seconds until one will be there."""
        now = self.clock()
        self._tokens = min(self.depth, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self.rate


class _Rejected(Exception):
    """The TokenReview did not accept the token (shared by the requests that waited on it)."""


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a token belongs to, as the TokenReview says (what the SubjectAccessReview is asked about)."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True, slots=True)
class ReviewDecision:
    """The API layer's `Decision`: `user` None means the request is not authenticated (401)."""

    allowed: bool
    user: str | None
    reason: str = ""


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class KubeAuthorizer:
    """The REST API's `Authorizer` in kubernetes mode."""

    def __init__(
        self,
        client: KubeClient,
        *,
        ttl: float = 10.0,
        capacity: int = 4096,
        rejected_capacity: int = 256,
        reviews_per_second: float = 20.0,
        review_timeout: float = REVIEW_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.review_timeout = review_timeout
        self.identities: TtlCache[bytes, Identity] = TtlCache(ttl, capacity, clock=clock)
        self.rejected: TtlCache[bytes, bool] = TtlCache(ttl, rejected_capacity, clock=clock)
        self.token_reviews = TokenBucket(reviews_per_second, clock=clock)
        # Tokens the API server accepted lately: reviewed again when their short cache entry expires, but
        # never held back by the bucket, which a flood of made-up tokens (no credentials needed) drains.
        self.accepted: TtlCache[bytes, bool] = TtlCache(KNOWN_GOOD_SECONDS, capacity, clock=clock)
        self.throttled = 0
        self._throttled_logged = float("-inf")
        self.verdicts: TtlCache[tuple[object, ...], tuple[bool, str]] = TtlCache(ttl, capacity, clock=clock)

    async def authorize(
        self,
        token: str | None,
        verb: str,
        group: str,
        resource: str,
        namespace: str | None,
        name: str | None,
    ) -> ReviewDecision:
        if not token:
            return ReviewDecision(False, None, "Unauthorized")
        digest = token_digest(token)
        if self.rejected.fresh(digest):
            return ReviewDecision(False, None, "Unauthorized")
        try:
            identity = await self.identities.get(digest, lambda: self._review_token(token, digest))
        except _Rejected:
            return ReviewDecision(False, None, "Unauthorized")
        key = (identity, verb, group, resource, namespace, name)
        allowed, reason = await self.verdicts.get(
            key, lambda: self._review_access(identity, verb, group, resource, namespace, name)
        )
        return ReviewDecision(allowed, identity.username, reason)

    async def _review_token(self, token: str, digest: bytes) -> Identity:
        """The token's identity; `_Rejected` (remembered apart) when the review does not accept it."""
        wait = 0.0 if self.accepted.fresh(digest) else self.token_reviews.take()
        if wait:
            self._throttle()
            raise TooManyRequests(
                "more new bearer tokens than GSLB_API_TOKEN_REVIEWS_PER_SECOND "
                f"({self.token_reviews.rate:g}) can be reviewed",
                retry_after=max(1, math.ceil(wait)),
            )
        body: Obj = {
            "apiVersion": TOKEN_REVIEW.api_version,
            "kind": TOKEN_REVIEW.kind,
            "spec": {"token": token},
        }
        status = await self._create(TOKEN_REVIEW, body)
        user = status.get("user") or {}
        if not status.get("authenticated") or not user.get("username"):
            log.info("bearer token rejected by TokenReview: %s", status.get("error") or "not authenticated")
            self.rejected.put(digest, True)
            raise _Rejected
        self.accepted.put(digest, True)
        extra = tuple(sorted((str(k), tuple(v or ())) for k, v in (user.get("extra") or {}).items()))
        return Identity(
            username=str(user["username"]),
            uid=str(user.get("uid") or ""),
            groups=tuple(user.get("groups") or ()),
            extra=extra,
        )

    def _throttle(self) -> None:
        """Count a request refused for want of a TokenReview; one WARNING a minute while it lasts."""
        self.throttled += 1
        now = self.token_reviews.clock()
        if now - self._throttled_logged >= THROTTLE_LOG_SECONDS:
            self._throttled_logged = now
            log.warning(
                "TokenReviews limited to %g a second (GSLB_API_TOKEN_REVIEWS_PER_SECOND): requests with "
                "bearer tokens not reviewed lately are answered 429 (%d so far)",
                self.token_reviews.rate,
                self.throttled,
            )

    async def _review_access(
        self,
        identity: Identity,
        verb: str,
        group: str,
        resource: str,
        namespace: str | None,
        name: str | None,
    ) -> tuple[bool, str]:
        plural, _, subresource = resource.partition("/")
        attributes = {
            "verb": verb,
            "group": group,
            "resource": plural,
            "subresource": subresource,
            "namespace": namespace or "",
            "name": name or "",
        }
        spec: Obj = {
            "resourceAttributes": {k: v for k, v in attributes.items() if v},
            "user": identity.username,
            "groups": list(identity.groups),
        }
        if identity.uid:
            spec["uid"] = identity.uid
        if identity.extra:
            spec["extra"] = {k: list(v) for k, v in identity.extra}
        body: Obj = {"apiVersion": ACCESS_REVIEW.api_version, "kind": ACCESS_REVIEW.kind, "spec": spec}
        status = await self._create(ACCESS_REVIEW, body)
        allowed = bool(status.get("allowed")) and not status.get("denied")
        reason = str(status.get("reason") or "")
        if status.get("evaluationError"):
            log.warning("SubjectAccessReview evaluation error: %s", status["evaluationError"])
        return allowed, "" if allowed else reason

    async def _create(self, res: Resource, body: Obj) -> Obj:
        """POST a review; any failure to get an answer is `Unavailable` (503), never a silent allow."""
        token = context.attach(baggage.clear())  # the caller's baggage is not ours to forward
        try:
            answer = await self.client.create(res, None, body, timeout=self.review_timeout)
        except KubeApiError as exc:
            log.error("%s failed: %s", res.kind, exc)
            raise Unavailable(f"{res.kind} failed: {exc.reason or exc.status}: {exc.message}") from exc
        finally:
            context.detach(token)
        status = answer.get("status")
        if not isinstance(status, dict):
            raise Unavailable(f"{res.kind} answer has no status")
        return status
