"""Does a burst of DNS queries slow reconciles down? Reconcile time with and without 10,000 queries/s.

One real `gslb serve` holds `--gslbs` Gslbs (default 500) backed by one service whose backend (a
`python -m http.server` in its own process) is stopped and started again, so every round makes every
Gslb reconcile at once. Each round is timed twice, alternately without and with `dnsperf -Q 10000`
asking the built-in DNS server for those Gslbs' hosts. Two figures per batch:
- batch time: from the first Gslb's DNS answer changing to the last ones' (see `timed_batch`);
- mean reconcile duration (`pygslb_reconcile_duration_seconds` sum / count over the batch), read from
  /metrics only before and after a batch (rendering it for hundreds of Gslbs takes ~0.1 s of the loop).
Prints the medians and the ratios loaded / quiet (goal: at most 1.10), plus the query rate dnsperf
achieved and how many queries it lost. `--dns-workers` sets DNS_WORKERS: 1 (the default) serves DNS
from a worker process on the other core, 0 from the main process (the way it was before).

    flock /tmp/bench.lock .venv/bin/python bench/dns_load_vs_reconcile.py \
        [--gslbs 500] [--rounds 5] [--qps 10000] [--dns-workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import dns.asyncquery
import dns.message
import dns.rdatatype
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.support import fleet  # noqa: E402
from tests.support.instance import Instance, free_port, instance_env, services_yaml  # noqa: E402

DURATION = "pygslb_reconcile_duration_seconds"


@dataclass
class Batch:
    seconds: float
    mean_reconcile_ms: float


class HttpBackend:
    """The service's one endpoint, in a process of its own so the bench's own loop cannot starve it."""

    def __init__(self, port: int, root: Path) -> None:
        self.port, self.root = port, root
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: ASYNC220 - starting it is instant; waiting is async below
            [sys.executable, "-m", "http.server", str(self.port), "--bind", "127.0.0.1"],
            cwd=self.root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(200):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                await asyncio.sleep(0.02)
                continue
            writer.close()
            return
        raise RuntimeError("http.server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait()
            self.process = None


async def histogram(client: httpx.AsyncClient) -> tuple[float, float]:
    text = (await client.get("/metrics")).text
    return fleet.metric(text, f"{DURATION}_sum", result="ok"), fleet.metric(
        text, f"{DURATION}_count", result="ok"
    )


async def answer(server: tuple[str, int], host: str) -> frozenset[str]:
    query = dns.message.make_query(host, "A")
    response = await dns.asyncquery.udp(query, server[0], port=server[1], timeout=2)
    return frozenset(
        rr.address for rrset in response.answer for rr in rrset if rrset.rdtype == dns.rdatatype.A
    )


async def timed_batch(
    client: httpx.AsyncClient, server: tuple[str, int], names: list[str], flip: Callable[[], Awaitable[None]]
) -> Batch:
    """Flip the backend's health, then time the batch of reconciles that follows.

    The controller queues a service's Gslbs in key order, so the batch starts with the first name and
    ends with the last ones: their DNS answers changing mark its start and end (polled every 5 ms,
    a few hundred queries a second, next to nothing beside the load).
    """
    ordered = sorted(names)
    first, last = fleet.host_of(ordered[0]), [fleet.host_of(n) for n in ordered[-3:]]
    before = {h: await answer(server, h) for h in [first, *last]}
    sum0, n0 = await histogram(client)
    await flip()
    started: float | None = None
    deadline = time.monotonic() + 120
    pending = set(last)
    while pending:
        now = time.monotonic()
        if started is None and await answer(server, first) != before[first]:
            started = now
        for host in list(pending):
            if await answer(server, host) != before[host]:
                pending.discard(host)
        if now > deadline:
            raise TimeoutError(f"the batch did not finish: {sorted(pending)}")
        await asyncio.sleep(0.005)
    ended = time.monotonic()
    await asyncio.sleep(0.5)  # the last reconciles write their status after publishing
    total, n = await histogram(client)
    return Batch(ended - (started or ended), (total - sum0) / max(1.0, n - n0) * 1000)


def start_dnsperf(port: int, queries: Path, qps: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(queries), "-Q", str(qps)]
        + ["-c", "4", "-l", "600", "-t", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def stop_dnsperf(process: subprocess.Popen[str]) -> tuple[float, str]:
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=30)
    qps = re.search(r"Queries per second:\s+([\d.]+)", out)
    lost = re.search(r"Queries lost:\s+(\d+ \([\d.]+%\))", out)
    if qps is None:
        raise RuntimeError(f"dnsperf said:\n{out}")
    return float(qps.group(1)), lost.group(1) if lost else "?"


async def main(gslbs: int, rounds: int, qps: int, dns_workers: int) -> None:
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        backend = HttpBackend(free_port(), tmp)
        await backend.start()
        services = tmp / "services.yaml"
        services.write_text(services_yaml({fleet.SERVICE: [f"127.0.0.1:{backend.port}"]}, interval=0.2))
        settings = fleet.settings(
            str(services), RECONCILE_REQUEUE_SECONDS="3600", LOG_LEVEL="warn", DNS_WORKERS=str(dns_workers)
        )
        (tmp / "gslb").mkdir()
        gslb = Instance(instance_env(tmp, "gslb", **settings), tmp / "gslb" / "serve.log")
        await gslb.start()
        try:
            async with httpx.AsyncClient(base_url=gslb.api, timeout=60) as client:
                names = [f"bench-{i}" for i in range(gslbs)]
                limit = asyncio.Semaphore(32)

                async def create(name: str) -> None:
                    async with limit:
                        response = await client.post(fleet.COLLECTION, json=fleet.manifest(name))
                        response.raise_for_status()

                await asyncio.gather(*(create(n) for n in names))
                await fleet.check_converged(client, gslb, names, timeout=120)
                queries = tmp / "queries.txt"
                queries.write_text("".join(f"{fleet.host_of(n)} A\n" for n in names))

                healthy = True

                async def flip() -> None:
                    nonlocal healthy
                    if healthy:
                        backend.stop()
                    else:
                        await backend.start()
                    healthy = not healthy

                quiet: list[Batch] = []
                loaded: list[Batch] = []
                rates: list[tuple[float, str]] = []
                for _ in range(rounds):
                    quiet.append(await timed_batch(client, gslb.dns, names, flip))
                    await asyncio.sleep(1)
                    perf = start_dnsperf(gslb.dns[1], queries, qps)
                    await asyncio.sleep(1.0)  # let the load settle
                    loaded.append(await timed_batch(client, gslb.dns, names, flip))
                    rates.append(stop_dnsperf(perf))
                    await asyncio.sleep(1)
        finally:
            await gslb.stop()
            backend.stop()

    def median(batches: list[Batch], attr: str) -> float:
        return statistics.median(getattr(b, attr) for b in batches)

    print(
        f"{gslbs} Gslbs reconciled per batch, {rounds} rounds, load: dnsperf -Q {qps} -c 4, "
        f"DNS_WORKERS={dns_workers}"
    )
    print(f"dnsperf achieved: {', '.join(f'{q:.0f} q/s (lost {lost})' for q, lost in rates)}")
    for attr, label, unit in (("seconds", "batch time", "s"), ("mean_reconcile_ms", "mean reconcile", "ms")):
        q, l_ = median(quiet, attr), median(loaded, attr)
        print(f"{label:15s} quiet {q:8.3f} {unit}   loaded {l_:8.3f} {unit}   ratio {l_ / q:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gslbs", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--qps", type=int, default=10_000)
    parser.add_argument("--dns-workers", type=int, default=1, help="DNS_WORKERS: 0 = DNS in the main process")
    args = parser.parse_args()
    asyncio.run(main(args.gslbs, args.rounds, args.qps, args.dns_workers))
