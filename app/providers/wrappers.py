"""Cross-cutting behaviour written once around any provider: tracing, retries, caching.

Providers stay thin translators; these wrappers have the provider shape themselves, so they stack:
`Retrying(Traced(Rfc2136Provider(...)))` gives one client span per attempt (each failed attempt's
span has status ERROR) inside whatever span the caller has open.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any, TypeVar

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from app.domain.endpoint import Changes, Endpoint
from app.providers.base import Provider, ProviderError

log = logging.getLogger("pygslb.providers")

T = TypeVar("T")
TRACER_NAME = "pygslb.providers"
_attempt: contextvars.ContextVar[int] = contextvars.ContextVar("provider_attempt", default=1)


class _Wrapper:
    def __init__(self, inner: Provider) -> None:
        self.inner = inner
        self.name = inner.name

    def adjust(self, endpoints: list[Endpoint]) -> list[Endpoint]:
        return self.inner.adjust(endpoints)

    def span_attributes(self, zone: str) -> Mapping[str, Any]:
        attrs = getattr(self.inner, "span_attributes", None)
        return dict(attrs(zone)) if attrs is not None else {}

    async def aclose(self) -> None:
        close = getattr(self.inner, "aclose", None)
        if close is not None:
            await close()


class Traced(_Wrapper):
    """A CLIENT span per call (`provider.records` / `provider.apply`); errors recorded, status ERROR.

    Spans are current while the provider runs, so an HTTP provider's outgoing `traceparent` names
    this span (or its HTTP child span when httpx is instrumented) as parent.
    """

    def __init__(self, inner: Provider, tracer_provider: trace.TracerProvider | None = None) -> None:
        super().__init__(inner)
        self._tracer = trace.get_tracer(TRACER_NAME, tracer_provider=tracer_provider)

    async def records(self, zone: str) -> list[Endpoint]:
        with self._span("provider.records", zone, {}) as span:
            found = await self.inner.records(zone)
            span.set_attribute("provider.records", len(found))
            return found

    async def apply(self, zone: str, changes: Changes) -> None:
        counts = {
            "provider.changes.create": len(changes.create),
            "provider.changes.update": len(changes.update_new),
            "provider.changes.delete": len(changes.delete),
        }
        with self._span("provider.apply", zone, counts):
            await self.inner.apply(zone, changes)

    @contextlib.contextmanager
    def _span(self, name: str, zone: str, extra: Mapping[str, Any]) -> Iterator[trace.Span]:
        attributes = {
            "provider.name": self.name,
            "provider.zone": zone,
            "provider.attempt": _attempt.get(),
            **self.span_attributes(zone),
            **extra,
        }
        with self._tracer.start_as_current_span(
            name,
            kind=SpanKind.CLIENT,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                yield span
            except Exception as exc:
                span.record_exception(exc)
                span.set_attribute("error.type", type(exc).__name__)
                if isinstance(exc, ProviderError):
                    span.set_attribute("provider.error.transient", exc.transient)
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                raise
            except asyncio.CancelledError:
                span.set_attribute("pygslb.cancelled", True)  # as app.telemetry.spans marks it
                raise


RetryObserver = Callable[[str, str, ProviderError, int], None]
"""(provider name, operation, error, attempt number) for every failed attempt that is retried (a
transient error with attempts left), e.g. a retry counter; a fatal error or the last attempt is not."""


class Retrying(_Wrapper):
    """Exponential backoff with jitter on TransientProviderError only; fatal errors surface at once.

    After `attempts` transient failures the last error is raised: the caller keeps its desired state
    and tries again on its next reconcile. Retrying an apply is safe because apply is all or nothing,
    and a change that did land before a timeout comes back as a ChangeConflictError (re-plan).
    """

    def __init__(
        self,
        inner: Provider,
        attempts: int = 4,
        base_delay: float = 0.5,
        max_delay: float = 10.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
        observer: RetryObserver | None = None,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        super().__init__(inner)
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._sleep = sleep
        self._jitter = jitter
        self._observer = observer
        self.calls = 0
        """Attempts made so far, over every call: lets a test prove there is no hot loop."""
        self.last_error: ProviderError | None = None
        """The last failure (cleared by a success): what a status page shows."""

    def delay(self, attempt: int) -> float:
        """Backoff after the `attempt`-th failure: half fixed, half random (no synchronized retries)."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return ceiling / 2 + ceiling / 2 * self._jitter()

    async def records(self, zone: str) -> list[Endpoint]:
        return await self._run("records", lambda: self.inner.records(zone))

    async def apply(self, zone: str, changes: Changes) -> None:
        await self._run("apply", lambda: self.inner.apply(zone, changes))

    async def _run(self, operation: str, call: Callable[[], Awaitable[T]]) -> T:
        for attempt in range(1, self.attempts + 1):
            self.calls += 1
            token = _attempt.set(attempt)
            try:
                result = await call()
            except ProviderError as exc:
                self.last_error = exc
                if not exc.transient or attempt == self.attempts:
                    raise
                if self._observer is not None:
                    self._observer(self.name, operation, exc, attempt)
                pause = self.delay(attempt)
                log.warning(
                    "%s %s failed (attempt %d/%d), retrying in %.2fs: %s",
                    self.name,
                    operation,
                    attempt,
                    self.attempts,
                    pause,
                    exc,
                )
                await self._sleep(pause)
            else:
                self.last_error = None
                return result
            finally:
                _attempt.reset(token)
        raise AssertionError("unreachable")


class Cached(_Wrapper):
    """`records()` answered from memory for `ttl` seconds per zone; any apply drops that zone's entry."""

    def __init__(self, inner: Provider, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(inner)
        self.ttl = ttl
        self._clock = clock
        self._cache: dict[str, tuple[float, list[Endpoint]]] = {}
        self.hits = 0
        self.misses = 0

    async def records(self, zone: str) -> list[Endpoint]:
        entry = self._cache.get(zone)
        if entry is not None and self._clock() - entry[0] < self.ttl:
            self.hits += 1
            return list(entry[1])
        self.misses += 1
        found = await self.inner.records(zone)
        self._cache[zone] = (self._clock(), list(found))
        return found

    async def apply(self, zone: str, changes: Changes) -> None:
        self._cache.pop(zone, None)
        try:
            await self.inner.apply(zone, changes)
        finally:
            self._cache.pop(zone, None)
