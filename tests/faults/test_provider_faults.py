"""The edge DNS provider fails while Gslbs are written and reconciled: it times out, answers 5xx, or
refuses the update. The API keeps answering, the error reaches every Gslb's status and the metrics,
retries back off, and once the provider is back the delegation is written exactly once and no Gslb
is lost or duplicated.

The provider is Infoblox (the one dependency that cannot run here), played by the fake WAPI server
speaking WAPI's wire format; the refusal is the grid's own answer when the parent zone is not one
it is authoritative for.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.support import fleet, tally
from tests.support.instance import eventually, running
from tests.support.wapi import FakeWapi

DELEGATED = "cloud.example.com"
GLUE = {"name": "gslb-ns-eu-cloud.example.com", "address": "127.0.0.1"}
FAULT_SECONDS = 5.0
ROUND_BASE = 0.9  # the delegation loop's first backoff (1 s) less its 10 % jitter
CALLS_PER_ROUND = 4  # at most: four attempts of a transient read, or read + re-read + write when refused


def inject(wapi: FakeWapi, kind: str) -> Callable[[], None]:
    """Start failing the way `kind` says; returns what clears the fault."""
    if kind == "timeout":
        wapi.fail_next(1_000_000, status=0)
    elif kind == "5xx":
        wapi.fail_next(1_000_000, status=503, text="Grid master is restarting")
    else:  # the grid refuses: someone removed the delegation and the zone is no longer authoritative
        wapi.auth_zones = ()
        wapi.objects.clear()

    def clear() -> None:
        wapi.faults.clear()
        wapi.auth_zones = ("example.com",)

    return clear


EXPECTED_MESSAGE = {
    "timeout": "did not answer within",
    "5xx": "WAPI answered 503: Grid master is restarting",
    "refused": "is not an authoritative zone",
}


async def delegated(client: httpx.AsyncClient, name: str) -> str | None:
    cond = await fleet.condition(client, name, "EdgeDelegated")
    return None if cond is None else cond["status"]


@pytest.mark.parametrize("kind", ["timeout", "5xx", "refused"])
async def test_edge_provider_fault_is_reported_backed_off_and_recovered(
    tmp_path: Path, services_file: str, kind: str
) -> None:
    async with FakeWapi() as wapi:
        settings = fleet.settings(
            services_file,
            EDGE_DNS_TYPE="infoblox",
            INFOBLOX_GRID_HOST="127.0.0.1",
            INFOBLOX_WAPI_PORT=str(wapi.port),
            INFOBLOX_SCHEME="http",
            INFOBLOX_WAPI_USERNAME=wapi.username,
            INFOBLOX_WAPI_PASSWORD=wapi.password,
            INFOBLOX_HTTP_REQUEST_TIMEOUT="0.5",
            ZONE_DELEGATION_RECONCILE_REQUEUE_SECONDS="1",
        )
        async with (
            running(tmp_path, **settings) as gslb,
            httpx.AsyncClient(base_url=gslb.api, timeout=10) as client,
            fleet.Writer(client, f"p-{kind}") as writer,
        ):
            await eventually(lambda: writer.has_acked(3), True)
            first = writer.acked[0]
            await eventually(lambda: delegated(client, first), "True")

            clear = inject(wapi, kind)
            tally.add("faults", f"edge provider {kind}")
            before = await fleet.metrics(client)
            calls_before = len(wapi.requests)
            loop = asyncio.get_running_loop()
            started = loop.time()

            # The error reaches status (every Gslb in the zone) while writes keep being accepted.
            await eventually(lambda: delegated(client, first), "False", timeout=FAULT_SECONDS * 2)
            cond = await fleet.condition(client, first, "EdgeDelegated")
            assert cond is not None and cond["reason"] == "ProviderError"
            assert cond["message"].startswith("infoblox: ")
            assert EXPECTED_MESSAGE[kind] in cond["message"], cond["message"]
            during = len(writer.acked)
            await eventually(lambda: writer.has_acked(during + 1), True)
            await eventually(lambda: delegated(client, writer.acked[during]), "False")
            await asyncio.sleep(max(0.0, FAULT_SECONDS - (loop.time() - started)))
            window = loop.time() - started
            calls = len(wapi.requests) - calls_before
            after = await fleet.metrics(client)

            clear()
            await eventually(lambda: delegated(client, first), "True", timeout=30)
            await writer.stop()
            assert set(writer.statuses) == {201} and not writer.unknown, f"API refused: {writer.statuses}"
            await fleet.check_converged(client, gslb, writer.acked)
            await eventually(lambda: _all_delegated(client, writer.acked), {})
            # The operator's log says when it works again, and warned at start that a loopback glue
            # (DNS_ADDRESS's host, as in this test) reaches no resolver elsewhere.
            assert f"edge delegation of {DELEGATED} through infoblox works again" in gslb.log()
            assert "127.0.0.1, a loopback address (DNS_ADDRESS's host)" in gslb.log()

    # In the metrics, labelled with the provider and whether the error was transient.
    transient = "false" if kind == "refused" else "true"
    errors = "pygslb_provider_errors_total"
    labels = {"provider": "infoblox", "transient": transient}
    assert fleet.metric(after, errors, **labels) > fleet.metric(before, errors, **labels)
    retries = "pygslb_provider_retries_total"  # counts what was retried: a refusal is not
    retried = fleet.metric(after, retries, provider="infoblox") - fleet.metric(
        before, retries, provider="infoblox"
    )
    assert (retried > 0) == (transient == "true"), retried
    # Retried, but backed off: at most a few calls per round, rounds spaced 1, 2, 4... seconds apart.
    rounds = 2 + math.log2(window / ROUND_BASE + 1)
    assert 2 <= calls <= CALLS_PER_ROUND * rounds, f"{calls} WAPI calls in {window:.1f}s"
    # The delegation is back, once, naming this cluster's glue.
    delegations = [o for o in wapi.objects.values() if o["fqdn"] == DELEGATED]
    assert len(delegations) == 1 and delegations[0]["delegate_to"] == [GLUE]
    tally.add("faults", "writes acknowledged during faults", len(writer.acked))


async def _all_delegated(client: httpx.AsyncClient, names: list[str]) -> dict[str, str | None]:
    """The Gslbs whose zone is not (yet) shown as delegated."""
    found = await fleet.conditions(client, names, "EdgeDelegated")
    return {name: status for name, status in found.items() if status != "True"}
