"""ZONE_DELEGATION_RECONCILE_REQUEUE_SECONDS=0 is k8gb's 0: the edge delegation is written at start and then
only when the loop is asked to, never on a schedule; a failure is still retried with backoff until it works.
The provider is the real Infoblox client against the fake WAPI server."""

from __future__ import annotations

import asyncio
import contextlib

from prometheus_client import CollectorRegistry

from app.controller.delegation import DelegationLoop, StaticGlue
from app.controller.metrics import ControllerMetrics
from app.providers.edge import build_edge_provider
from app.settings import load_settings
from tests.support.instance import eventually
from tests.support.wapi import FakeWapi


async def test_zero_interval_delegates_at_start_retries_failures_then_waits_for_a_kick() -> None:
    async with FakeWapi() as wapi:
        settings = load_settings(
            infoblox_grid_host="127.0.0.1",
            infoblox_wapi_port=wapi.port,
            infoblox_scheme="http",
            infoblox_wapi_username=wapi.username,
            infoblox_wapi_password=wapi.password,
            dns_zones="example.com:cloud.example.com:30",
            zone_delegation_reconcile_requeue_seconds=0,
        )
        provider = build_edge_provider(settings, registry=CollectorRegistry(), attempts=1)
        loop = DelegationLoop(
            provider=provider,
            zones=settings.zones,
            own_tag="eu",
            peer_tags=[],
            glue=StaticGlue(["10.0.0.1"]),
            glue_prefix=settings.gluea_prefix,
            ns_ttl=settings.ns_record_ttl,
            metrics=ControllerMetrics(CollectorRegistry()),
            interval=settings.zone_delegation_reconcile_requeue_seconds,
            base_delay=0.05,
            max_delay=0.05,
        )
        wapi.fail_next(2, status=503, text="Grid master is restarting")  # the first two rounds fail
        task = asyncio.create_task(loop.run())
        try:

            async def delegated() -> bool:
                state = loop.state.get("cloud.example.com")
                return state is not None and state.ok

            await eventually(delegated, True)
            assert loop.state["cloud.example.com"].attempts == 3  # retried with backoff until it worked
            assert wapi.zone("cloud.example.com") is not None

            settled = len(wapi.requests)
            await asyncio.sleep(1.0)  # no schedule: not one more request while nothing asks
            assert len(wapi.requests) == settled

            loop.kick()

            async def requests() -> bool:
                return len(wapi.requests) > settled

            await eventually(requests, True)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await provider.aclose()  # type: ignore[attr-defined]
