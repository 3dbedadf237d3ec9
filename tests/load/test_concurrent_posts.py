"""1,000 distinct Gslbs POSTed at once to one `gslb serve`: every one stored exactly once and reconciled
into DNS, while a prober in its own process keeps asking the DNS server for an existing host and
never goes unanswered. The prober's latency percentiles are printed (a figure, not a pass mark).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
from collections import Counter
from pathlib import Path

import httpx

from tests.support import fleet, tally
from tests.support.instance import ROOT, eventually, running

COUNT = 1_000


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def test_thousand_concurrent_posts_stored_once_reconciled_and_dns_answers(
    tmp_path: Path, services_file: str
) -> None:
    async with running(tmp_path, **fleet.settings(services_file)) as gslb:
        limits = httpx.Limits(max_connections=COUNT, max_keepalive_connections=COUNT)
        async with httpx.AsyncClient(base_url=gslb.api, timeout=60, limits=limits) as client:
            assert (await client.post(fleet.COLLECTION, json=fleet.manifest("steady"))).status_code == 201
            await fleet.check_converged(client, gslb, ["steady"])

            host, port = gslb.dns
            prober = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.support.dnsprobe",
                host,
                str(port),
                fleet.host_of("steady"),
                ",".join(sorted(fleet.EXPOSED)),
                cwd=ROOT,
                stdout=asyncio.subprocess.PIPE,
            )
            assert prober.stdout is not None
            try:
                assert (await asyncio.wait_for(prober.stdout.readline(), 30)).strip() == b"ready"
                names = [f"load-{i}" for i in range(COUNT)]
                loop = asyncio.get_running_loop()
                started = loop.time()
                responses = await asyncio.gather(
                    *(client.post(fleet.COLLECTION, json=fleet.manifest(n)) for n in names),
                    return_exceptions=True,
                )
                codes = Counter(
                    r.status_code if isinstance(r, httpx.Response) else repr(r) for r in responses
                )
                assert codes == {201: COUNT}, codes
                acked_in = loop.time() - started
                items = await fleet.check_converged(client, gslb, ["steady", *names], timeout=60)
                answered_in = loop.time() - started
            finally:
                prober.terminate()
                out, _ = await asyncio.wait_for(prober.communicate(), 30)
            assert len(items) == COUNT + 1
            await eventually(lambda: _unobserved(client), 0)

    probed = json.loads(out.decode().splitlines()[-1])
    latencies, failures = probed["latencies_ms"], probed["failures"]
    assert latencies and not failures, f"DNS did not keep answering: {failures[:5]}"
    figures = (
        f"{len(latencies)} queries during the burst: p50 {statistics.median(latencies):.1f} ms, "
        f"p99 {percentile(latencies, 0.99):.1f} ms, max {max(latencies):.1f} ms"
    )
    print(
        f"load: {COUNT} concurrent POSTs acknowledged in {acked_in:.1f}s, all answering in DNS after "
        f"{answered_in:.1f}s; DNS {figures}"
    )
    tally.add("load", "concurrent POSTs stored once and reconciled", COUNT)
    tally.note("load", "DNS latency during the POST burst", figures)


async def _unobserved(client: httpx.AsyncClient) -> int:
    """How many Gslbs have no status for their generation yet."""
    items = await fleet.listed(client)
    return sum(1 for i in items if (i.get("status") or {}).get("observedGeneration") != 1)
