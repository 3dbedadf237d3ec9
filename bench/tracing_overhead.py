"""What tracing costs: API throughput (POST, GET) and reconciles per second of one `gslb serve`,
with tracing off, sampling ratio 0, and fully on exporting to a real OTLP receiver, side by side.

    flock /tmp/bench.lock .venv/bin/python bench/tracing_overhead.py [--rounds 5] [--gslbs 400]
        [--gets 2000] [--concurrency 16] [--resync-window 6] [--py-spy PATH]

Each round runs every mode (in a rotated order, so drift in machine load hits every mode alike), and
each mode in each round is two fresh processes over one data directory:

1. the API phase: POST `--gslbs` Gslbs (callers send sampled `traceparent`s), time until the DNS
   server answers every one (reconciled and published), then `--gets` GETs (no `traceparent`:
   sampled by the ratio alone);
2. the resync phase: a restart with RECONCILE_REQUEUE_SECONDS=0.01, so every Gslb is reconciled again
   and again with no API traffic in the way; reconciles per second over `--resync-window` seconds.
   These reconciles are new root traces (sampled at the ratio), and mostly CPU: nothing changes.

Besides throughput it counts operations per CPU-second of the server process (all threads, so the
exporter's too; each API phase's CPU is read after the batch processor has exported its spans): that
is the cost itself, and it stays meaningful when other work shares the machine, where throughput
does not (with 16 callers in one Python process the load generator, not the server, limits GETs).

The OTLP receiver runs in its own process (as a collector would), so decoding spans does not take the
load generator's GIL. Ratios are paired per round (mode / off of the same round); the table shows
their median and range. Goal (issue 4): fully on costs at most 10% of API throughput and 5% of
reconcile throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.post_to_dns import answered, manifest  # noqa: E402
from tests.support.instance import Backend, Instance, running, services_yaml  # noqa: E402

URL = "/apis/k8gb.io/v1beta1/namespaces/bench/gslbs"
METRICS = ("post/s", "get/s", "write rec/s", "resync rec/s")
#: The same operations per CPU-second of the server process (all its threads, exporter included): the
#: cost itself, steadier than throughput when other work shares the machine.
PER_CPU = ("post+rec/cpu-s", "get/cpu-s", "resync/cpu-s")
Sample = dict[str, float]
_TICK = os.sysconf("SC_CLK_TCK")
#: Longer than the batch processor's schedule delay (5 s), so a phase's spans are exported (and their
#: CPU counted) before the next phase starts.
SETTLE_S = 6.0


def cpu_seconds(gslb: Instance) -> float:
    """User + system CPU time of the server process so far (Linux /proc)."""
    assert gslb.process is not None
    fields = Path(f"/proc/{gslb.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def modes(receiver: str) -> dict[str, dict[str, str]]:
    return {
        "off": {"TRACING_ENABLED": "false"},
        "ratio 0": {
            "TRACING_ENABLED": "true",
            "TRACING_SAMPLING_RATIO": "0",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver,
        },
        "on": {"TRACING_ENABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": receiver},
    }


def traceparent(i: int) -> str:
    return f"00-{i + 1:032x}-{i + 1:016x}-01"


async def reconciled(client: httpx.AsyncClient) -> float:
    text = (await client.get("/metrics")).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("k8gb_gslb_reconciliation_loops_total{") and 'name="init"' not in line
    )


async def all_answered(gslb: Instance, gslbs: int) -> None:
    """Wait until the built-in DNS answers every Gslb's host, i.e. each has been reconciled and
    published. Hosts are checked in the order they were written (the queue's order, mostly), one
    query at a time: answering from pre-rendered records is cheap, unlike rendering /metrics for
    hundreds of Gslbs, which cost more CPU than the tracing being measured when polled."""
    for i in range(gslbs):
        while not await answered(gslb.dns, f"app-{i}.cloud.example.com"):
            await asyncio.sleep(0.005)


async def api_phase(gslb: Instance, gslbs: int, gets: int, concurrency: int) -> Sample:
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

        start, cpu = time.perf_counter(), cpu_seconds(gslb)
        await asyncio.gather(*(post(i) for i in range(gslbs)))
        post_s = time.perf_counter() - start
        await all_answered(gslb, gslbs)
        reconcile_s = time.perf_counter() - start
        await asyncio.sleep(SETTLE_S)  # the batch processor exports the POSTs' spans: their cost
        post_cpu = cpu_seconds(gslb) - cpu
        start, cpu = time.perf_counter(), cpu_seconds(gslb)
        await asyncio.gather(*(get(i) for i in range(gets)))
        get_s = time.perf_counter() - start
        await asyncio.sleep(SETTLE_S)
        get_cpu = cpu_seconds(gslb) - cpu
    return {
        "post/s": gslbs / post_s,
        "get/s": gets / get_s,
        "write rec/s": gslbs / reconcile_s,
        "post+rec/cpu-s": gslbs / post_cpu,
        "get/cpu-s": gets / get_cpu,
    }


async def resync_phase(gslb: Instance, gslbs: int, window: float) -> Sample:
    async with httpx.AsyncClient(base_url=gslb.api, timeout=30) as client:
        while await reconciled(client) < gslbs:  # the start-up round, then one more as warm-up
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)
        before, t0, cpu0 = await reconciled(client), time.perf_counter(), cpu_seconds(gslb)
        await asyncio.sleep(window)
        after, t1, cpu1 = await reconciled(client), time.perf_counter(), cpu_seconds(gslb)
    return {"resync rec/s": (after - before) / (t1 - t0), "resync/cpu-s": (after - before) / (cpu1 - cpu0)}


async def profiled(gslb: Instance, py_spy: str | None, out: Path, seconds: float) -> None:
    """Record the server with py-spy for `seconds` (in the background) when asked to."""
    if py_spy and gslb.process is not None:
        await asyncio.create_subprocess_exec(
            py_spy, "record", "-p", str(gslb.process.pid), "-d", str(int(seconds)), "-r", "200",
            "-f", "speedscope", "-o", str(out), "--nonblocking",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip


async def run_mode(env: dict[str, str], args: argparse.Namespace, backend: Backend, tag: str) -> Sample:
    with tempfile.TemporaryDirectory() as tmp:
        services = Path(tmp) / "services.yaml"
        services.write_text(services_yaml({"bench/svc": [f"127.0.0.1:{backend.port}"]}, interval=30))
        base = {"GSLB_SERVICES_FILE": str(services), "CLUSTER_EXPOSED_IPS": "10.0.0.1", "LOG_LEVEL": "warn"}
        async with running(Path(tmp), **base, **env) as gslb:
            await profiled(gslb, args.py_spy, Path(f"/tmp/tracing_api_{tag}.speedscope.json"), 15)
            sample = await api_phase(gslb, args.gslbs, args.gets, args.concurrency)
        async with running(Path(tmp), **base, **env, RECONCILE_REQUEUE_SECONDS="0.01") as gslb:
            await profiled(gslb, args.py_spy, Path(f"/tmp/tracing_resync_{tag}.speedscope.json"), 8)
            sample |= await resync_phase(gslb, args.gslbs, args.resync_window)
    return sample


async def receiver_process() -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--serve-receiver",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    return proc, (await proc.stdout.readline()).decode().strip()


def serve_receiver() -> None:
    """Child process: a real OTLP/HTTP receiver; prints its address, and the span count at stdin's end."""
    from tests.support.otlp import OtlpHttpReceiver

    with OtlpHttpReceiver() as receiver:
        print(receiver.host_port, flush=True)
        sys.stdin.read()
        print(len(receiver.spans), flush=True)


def summary(samples: dict[str, list[Sample]], metrics: tuple[str, ...]) -> list[str]:
    """Medians per mode, then each mode's ratio to "off" paired per round: median [min-max]."""
    off = samples["off"]
    lines = [f"{'mode':8} " + "".join(f"{m:>15}" for m in metrics)]
    for name, runs in samples.items():
        lines.append(
            f"{name:8} " + "".join(f"{statistics.median(r[m] for r in runs):15.0f}" for m in metrics)
        )
    for name, runs in samples.items():
        if name == "off":
            continue
        ratios = []
        for m in metrics:
            paired = [r[m] / o[m] for r, o in zip(runs, off, strict=True)]
            ratios.append(f"{m} {statistics.median(paired):.2f} [{min(paired):.2f}-{max(paired):.2f}]")
        lines.append(f"{name + ' / off':14} " + "  ".join(ratios))
    return lines


async def main(args: argparse.Namespace) -> None:
    backend = await Backend().start()
    receiver, address = await receiver_process()
    try:
        mode_env = modes(address)
        names = list(mode_env)
        samples: dict[str, list[Sample]] = {name: [] for name in names}
        for r in range(args.rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                tag = f"{name.replace(' ', '')}_{r}"
                samples[name].append(await run_mode(mode_env[name], args, backend, tag))
                print(
                    f"round {r + 1} {name:8} "
                    + "  ".join(f"{k} {v:.0f}" for k, v in samples[name][-1].items())
                )
    finally:
        assert receiver.stdin is not None and receiver.stdout is not None
        receiver.stdin.close()
        exported = (await receiver.stdout.readline()).decode().strip()
        await receiver.wait()
        await backend.stop()
    print(
        f"\ntracing overhead: {args.gslbs} POSTs, {args.gets} GETs, concurrency {args.concurrency}, "
        f"resync window {args.resync_window:g} s; {args.rounds} interleaved rounds, fresh processes per run"
    )
    print("throughput:")
    print("\n".join(summary(samples, METRICS)))
    print("per CPU-second of the server (cost; steadier when the machine is shared):")
    print("\n".join(summary(samples, PER_CPU)))
    print(f"spans received by the OTLP receiver: {exported}")
    print("note: POSTs carry sampled traceparents, so 'ratio 0' still samples them (parent-based).")


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve-receiver"]:
        serve_receiver()
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gslbs", type=int, default=400)
    parser.add_argument("--gets", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--resync-window", type=float, default=6.0)
    parser.add_argument(
        "--py-spy", help="py-spy executable: record the server per mode to /tmp/*.speedscope.json"
    )
    asyncio.run(main(parser.parse_args()))
