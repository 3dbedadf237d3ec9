"""The edge delegation loop on its own: any failed attempt is recorded and retried, the loop never ends."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry

from app.controller.delegation import DelegationLoop, StaticGlue
from app.controller.metrics import ControllerMetrics
from app.domain.endpoint import Endpoint
from app.domain.zones import parse_dns_zones
from app.providers.base import Provider
from app.providers.inmemory import InMemoryProvider
from app.providers.rfc2136 import Rfc2136Provider
from tests.support.bind9 import Bind9, generate_key, require_named, zone_text
from tests.support.instance import eventually

ZONES = parse_dns_zones("example.com:cloud.example.com:30")
ZONE = "cloud.example.com"


class Unforeseen(InMemoryProvider):
    """The reference provider, failing its first reads with what a provider did not translate (the
    Infoblox provider let KeyError, TypeError and httpx.DecodingError through)."""

    def __init__(self, failures: list[Exception]) -> None:
        super().__init__()
        self.failures = failures
        self.reads = 0

    async def records(self, zone: str) -> list[Endpoint]:
        self.reads += 1
        if self.failures:
            raise self.failures.pop(0)
        return await super().records(zone)


def loop_for(
    provider: Provider,
    registry: CollectorRegistry | None = None,
    *,
    interval: float = 300.0,
    base_delay: float = 0.05,
    max_delay: float = 0.1,
) -> DelegationLoop:
    return DelegationLoop(
        provider=provider,
        zones=ZONES,
        own_tag="eu",
        peer_tags=[],
        glue=StaticGlue(["10.0.0.1"]),
        glue_prefix="gslb-ns-",
        ns_ttl=30,
        metrics=ControllerMetrics(registry or CollectorRegistry()),
        interval=interval,
        base_delay=base_delay,
        max_delay=max_delay,
    )


@contextlib.asynccontextmanager
async def running(loop: DelegationLoop) -> AsyncIterator[asyncio.Task[None]]:
    """The loop's run() as the runtime starts it; on exit, cancelled, which still ends it."""
    task = asyncio.create_task(loop.run())
    try:
        yield task
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_an_unforeseen_error_is_a_failed_attempt_retried_with_backoff(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "pygslb.delegation")
    registry = CollectorRegistry()
    provider = Unforeseen([KeyError("address"), KeyError("address"), TypeError("string indices")])
    loop = loop_for(provider, registry)
    seen: list[str] = []
    loop.on_change = lambda zone: seen.append(loop.state[zone].message)

    async def delegated() -> bool:
        state = loop.state.get(ZONE)
        return state is not None and state.ok

    async with running(loop) as task:
        await eventually(delegated, True, timeout=5)
        assert not task.done()
    # Status showed each failure, then the delegation, which is in place.
    assert seen == [
        "inmemory: KeyError: 'address'",
        "inmemory: TypeError: string indices",
        "delegated through inmemory",
    ]
    assert provider.reads == 5  # three failed, one that wrote, one reading the write back
    assert {e.record_type for e in await provider.records("example.com")} == {"NS", "A"}
    labels = {"provider": "inmemory", "zone": ZONE, "transient": "false"}
    assert registry.get_sample_value("pygslb_provider_errors_total", labels) == 3
    # Logged at ERROR with a traceback when each error first shows, not on every retry.
    failures = [r for r in caplog.records if "failed (attempt" in r.getMessage()]
    assert [(r.levelno, r.exc_info is not None) for r in failures] == [
        (logging.ERROR, True),
        (logging.WARNING, False),
        (logging.ERROR, True),
    ]
    assert "attempt 2" in failures[1].getMessage() and "KeyError: 'address'" in failures[1].getMessage()
    assert "works again" in caplog.text


class Held(InMemoryProvider):
    """The reference provider whose first read waits for `release`."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.reading = asyncio.Event()
        self.release = asyncio.Event()

    async def records(self, zone: str) -> list[Endpoint]:
        self.reads += 1
        if self.reads == 1:
            self.reading.set()
            await self.release.wait()
        return await super().records(zone)


async def test_a_kick_during_a_sync_is_not_lost() -> None:
    """kick() while a zone was being synced was cleared at the end of that sync: the re-check it asked
    for (a peer appeared) waited for the next interval, five minutes by default."""
    provider = Held()
    loop = loop_for(provider)
    async with running(loop):
        await provider.reading.wait()
        loop.kick()
        provider.release.set()
        await eventually(lambda: asyncio.sleep(0, provider.reads), 3, timeout=2)  # write, read back, the kick


async def test_an_update_the_edge_ignores_is_a_failure_not_delegated() -> None:
    """BIND answers NOERROR to an add it ignores (RFC 2136 §3.4.2.2): here a CNAME someone put at this
    cluster's glue name. The loop reported the zone delegated and wrote the same update every round."""
    require_named()
    key = await generate_key("edge-key")
    blocked = zone_text("example.com", records="gslb-ns-eu-cloud 30 IN CNAME ns1.example.com.")
    async with Bind9({"example.com": blocked}, key=key) as edge:
        provider = Rfc2136Provider(edge.host, edge.port, key.name, key.secret, key.algorithm, timeout=2.0)
        loop = loop_for(provider)
        assert not await loop.sync_zone(ZONES[0])
        state = loop.state[ZONE]
        assert not state.ok and "gslb-ns-eu-cloud.example.com" in state.message
        assert "does not hold it" in state.message


async def test_backing_off_never_waits_longer_than_the_interval() -> None:
    """An edge down for a while came back repaired only after max_delay (60 s), even with a shorter
    ZONE_DELEGATION_RECONCILE_REQUEUE_SECONDS: peers meanwhile found no glue and dropped this cluster."""
    provider = Unforeseen([TimeoutError("edge down")] * 100)
    loop = loop_for(provider, interval=0.1, base_delay=1.0, max_delay=60.0)
    async with running(loop):
        await eventually(lambda: asyncio.sleep(0, provider.reads >= 4), True, timeout=2)
