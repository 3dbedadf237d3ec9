"""What tracing costs: API throughput (POST, GET) and reconciles per second of one `gslb serve`,
with tracing off, sampling ratio 0, and fully on exporting to a real OTLP receiver, side by side.

    .venv/bin/python bench/tracing_overhead.py [--gslbs 400] [--gets 2000] [--concurrency 16]

Each mode runs in a fresh process on the same machine; the figures are ratios against "off".
Goal (issue): fully on costs at most 10% of API throughput and 5% of reconcile throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.post_to_dns import manifest  # noqa: E402
from tests.support.instance import Backend, running, services_yaml  # noqa: E402
from tests.support.otlp import OtlpHttpReceiver  # noqa: E402

URL = "/apis/k8gb.io/v1beta1/namespaces/bench/gslbs"


async def reconciled(client: httpx.AsyncClient) -> float:
    text = (await client.get("/metrics")).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("k8gb_gslb_reconciliation_loops_total{") and 'name="init"' not in line
    )


async def run_mode(
    env: dict[str, str], gslbs: int, gets: int, concurrency: int, backend: Backend
) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        services = Path(tmp) / "services.yaml"
        services.write_text(services_yaml({"bench/svc": [f"127.0.0.1:{backend.port}"]}, interval=30))
        base = {"GSLB_SERVICES_FILE": str(services), "CLUSTER_EXPOSED_IPS": "10.0.0.1", "LOG_LEVEL": "warn"}
        async with running(Path(tmp), **base, **env) as gslb:
            limits = httpx.Limits(max_connections=concurrency)
            async with httpx.AsyncClient(base_url=gslb.api, timeout=30, limits=limits) as client:
                sem = asyncio.Semaphore(concurrency)

                async def post(i: int) -> None:
                    async with sem:
                        r = await client.post(URL, json=manifest(i), headers={"traceparent": traceparent(i)})
                        assert r.status_code == 201, r.text

                async def get(i: int) -> None:
                    async with sem:
                        r = await client.get(f"{URL}/app-{i % gslbs}")
                        assert r.status_code == 200

                start = time.perf_counter()
                await asyncio.gather(*(post(i) for i in range(gslbs)))
                post_s = time.perf_counter() - start
                while await reconciled(client) < gslbs:
                    await asyncio.sleep(0.01)
                reconcile_s = time.perf_counter() - start
                start = time.perf_counter()
                await asyncio.gather(*(get(i) for i in range(gets)))
                get_s = time.perf_counter() - start
    return {"post/s": gslbs / post_s, "get/s": gets / get_s, "reconciles/s": gslbs / reconcile_s}


def traceparent(i: int) -> str:
    return f"00-{i + 1:032x}-{i + 1:016x}-01"


async def main(gslbs: int, gets: int, concurrency: int, rounds: int) -> None:
    backend = await Backend().start()
    with OtlpHttpReceiver() as receiver:
        modes = {
            "off": {"TRACING_ENABLED": "false"},
            "ratio 0": {
                "TRACING_ENABLED": "true",
                "TRACING_SAMPLING_RATIO": "0",
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.host_port,
            },
            "on": {"TRACING_ENABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.host_port},
        }
        samples: dict[str, list[dict[str, float]]] = {name: [] for name in modes}
        for _ in range(rounds):  # interleaved, so drift in machine load hits every mode alike
            for name, env in modes.items():
                samples[name].append(await run_mode(env, gslbs, gets, concurrency, backend))
        results = {
            name: {k: statistics.median(run[k] for run in runs) for k in runs[0]}
            for name, runs in samples.items()
        }
        exported = len(receiver.spans)
    await backend.stop()
    print(
        f"tracing overhead: {gslbs} POSTs, {gets} GETs, concurrency {concurrency}; "
        f"median of {rounds} interleaved rounds, a fresh process per run"
    )
    print(f"{'mode':10} {'post/s':>10} {'get/s':>10} {'reconciles/s':>14}   ratios vs off")
    for name, r in results.items():
        ratios = "  ".join(f"{k} {r[k] / results['off'][k]:.2f}" for k in r)
        print(f"{name:10} {r['post/s']:10.0f} {r['get/s']:10.0f} {r['reconciles/s']:14.0f}   {ratios}")
    print(f"spans received by the OTLP receiver: {exported}")
    print("note: callers send sampled traceparents, so 'ratio 0' still samples them (parent-based).")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gslbs", type=int, default=400)
    parser.add_argument("--gets", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.gslbs, args.gets, args.concurrency, args.rounds))
