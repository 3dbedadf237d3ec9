"""Kubernetes mode at scale: N Gslbs in the API, one `gslb serve` controller, cold start then steady state.

The API server is the emulator of the tests (tests/support/kmockapi.py, real HTTP) running in this
process, with the chart's CRDs; it is seeded directly with N k8gb.io Gslbs (embedded ingress, one host
each, spread over `--namespaces` namespaces) and, for each, a Service with a ready EndpointSlice, so
every Gslb is Healthy and gets records (CLUSTER_EXPOSED_IPS gives the exposed IP). The controller is a
real `gslb serve` subprocess in kubernetes mode with the built-in DNS on (so its zone feed runs too).

Figures:
- cold start: from spawning the process to `/readyz` (every Gslb that existed at start reconciled once),
  and to `/healthz` (start-up and first lists done); then checked from the API side (N DNSEndpoints,
  N statuses) and DNS;
- reconciles per second over the cold start, and API calls per reconcile by verb and resource
  (watch streams counted apart: they are long-lived, one per informer);
- peak resident memory of the controller (VmHWM), and its CPU seconds; the emulator's CPU seconds
  (this process) say whether the emulator, not the controller, was the bottleneck;
- steady state: nothing changes for `--steady` seconds with RECONCILE_REQUEUE_SECONDS=`--requeue`, so
  every Gslb is resynced at least once: reconciles, reads and writes by verb (the goal is zero writes).
Goals (issue 5): cold start under 20 s, zero writes in steady state, under 400 MB resident.

    .venv/bin/python bench/kube_scale.py [--gslbs 10000] [--namespaces 20] [--requeue 30] [--steady 35]
                                         [--workers 16] [--no-dns]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.gslb_factory import gslb_body  # noqa: E402
from tests.support.instance import Instance, a_records, instance_env  # noqa: E402
from tests.support.kmockapi import KubeApi, load_yaml_documents, running_api  # noqa: E402

ZONE = "cloud.example.com"
EXPOSED_IP = "10.0.0.1"
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
GOAL_COLD_S, GOAL_RSS_MB = 20.0, 400.0


def seed(api: KubeApi, count: int, namespaces: int) -> None:
    for ns in range(namespaces):
        api.create_object("", "v1", "namespaces", {"metadata": {"name": f"ns-{ns}"}})
    for i in range(count):
        ns, service = f"ns-{i % namespaces}", f"svc-{i}"
        api.create_object("", "v1", "services", {"metadata": {"name": service, "namespace": ns}, "spec": {}})
        api.create_object(
            "discovery.k8s.io",
            "v1",
            "endpointslices",
            {
                "metadata": {
                    "name": f"{service}-1",
                    "namespace": ns,
                    "labels": {"kubernetes.io/service-name": service},
                },
                "endpoints": [{"addresses": ["10.244.0.5"], "conditions": {"ready": True}}],
            },
        )
        body = gslb_body(f"app-{i}", namespace=ns, host=f"app-{i}.{ZONE}", service=service)
        api.create_object("k8gb.io", "v1beta1", "gslbs", body)


def kind_of(request: Any) -> str:
    """`VERB resource` of one logged request; watches apart, discovery as such."""
    plural = request.resource.plural if request.resource is not None else None
    if plural is None:
        return "GET discovery"
    sub = f"/{request.subresource}" if request.subresource else ""
    if str(request.params.get("watch", "")).lower() in ("true", "1"):
        return f"WATCH {plural}"
    verb = request.method.value
    if verb == "GET" and not request.name:
        verb = "LIST"
    return f"{verb} {plural}{sub}"


def tally(api: KubeApi, since: int) -> tuple[Counter[str], int]:
    log = list(api)
    return Counter(kind_of(r) for r in log[since:]), len(log)


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak resident) in kB."""
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields


def proc_cpu(pid: int) -> float:
    parts = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def reconciles(client: httpx.AsyncClient) -> int:
    """Reconciles so far, successful or not, from the controller's /metrics."""
    text = (await client.get("/metrics")).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(("k8gb_gslb_reconciliation_loops_total{", "k8gb_gslb_errors_total{")):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def print_calls(title: str, calls: Counter[str], per: int) -> None:
    print(f"  {title}")
    for kind, n in sorted(calls.items(), key=lambda kv: (-kv[1], kv[0])):
        ratio = f"{n / per:6.2f} per reconcile" if per and not kind.startswith("WATCH") else ""
        print(f"    {kind:<42} {n:>8}  {ratio}")


async def run(args: argparse.Namespace) -> None:
    crds = load_yaml_documents(sorted((ROOT / "chart" / "crds").glob("*.yaml")))
    with tempfile.TemporaryDirectory(prefix="kube-scale-") as tmp_dir:
        tmp = Path(tmp_dir)
        async with running_api(tmp) as api:
            api.install_crds(crds)
            began = time.monotonic()
            seed(api, args.gslbs, args.namespaces)
            print(
                f"seeded {args.gslbs} Gslbs, Services and EndpointSlices in {time.monotonic() - began:.1f} s"
            )
            env = instance_env(
                tmp,
                "controller",
                GSLB_MODE="kubernetes",
                KUBECONFIG=str(api.kubeconfig),
                POD_NAMESPACE="k8gb",
                CLUSTER_GEO_TAG="eu",
                DNS_ZONES=f"example.com:{ZONE}:30",
                CLUSTER_EXPOSED_IPS=EXPOSED_IP,
                **({"DNS_ADDRESS": ""} if args.no_dns else {}),
                RECONCILE_REQUEUE_SECONDS=str(args.requeue),
                RECONCILE_WORKERS=str(args.workers),
                LOG_LEVEL="warn",
            )
            controller = Instance(env, tmp / "controller" / "serve.log")
            (tmp / "controller").mkdir(exist_ok=True)
            _, mark = tally(api, 0)
            emulator_cpu = own_cpu()
            started = time.monotonic()
            await controller.start(timeout=600)
            serving = time.monotonic() - started  # imports, first lists, DNS/API up; reconciles under way
            assert controller.process is not None
            pid = controller.process.pid
            listed = proc_status(pid)["VmRSS"]
            async with httpx.AsyncClient(base_url=controller.api, timeout=30) as client:
                while (await client.get("/readyz")).status_code != 200:
                    await asyncio.sleep(0.1)
                cold = time.monotonic() - started
                emulator_cpu = own_cpu() - emulator_cpu
                controller_cpu = proc_cpu(pid)
                cold_calls, mark = tally(api, mark)
                done = await reconciles(client)
                memory = proc_status(pid)

                dnsendpoints = len(api.objects("externaldns.k8s.io", "dnsendpoints"))
                with_status = sum(1 for g in api.objects("k8gb.io", "gslbs") if g.get("status"))
                probe = f"app-{args.gslbs // 2}.{ZONE}"
                answer = None if args.no_dns else await a_records(controller.dns, probe)

                print(f"\ncold start, {args.gslbs} Gslbs, {args.workers} workers")
                print(f"  spawn -> /readyz (all reconciled once)  {cold:8.1f} s   goal < {GOAL_COLD_S:.0f} s")
                print(f"  (spawn -> /healthz: {serving:.1f} s: start-up, the first lists)")
                print(f"  reconciles                              {done:8d}   ({done / cold:,.0f} per s)")
                print(f"  API side: DNSEndpoints {dnsendpoints}, Gslbs with status {with_status}")
                print(f"  built-in DNS: {probe} -> {sorted(answer or [])}")
                print(
                    f"  CPU: controller {controller_cpu:.1f} s, emulator (this process) {emulator_cpu:.1f} s"
                )
                print(f"  emulator busy {emulator_cpu / cold:.0%} of the time (one core = 100%)")
                print(
                    f"  controller RSS at /healthz {listed / 1024:.0f} MB, "
                    f"now {memory['VmRSS'] / 1024:.0f} MB, "
                    f"peak {memory['VmHWM'] / 1024:.0f} MB   goal < {GOAL_RSS_MB:.0f} MB"
                )
                non_watch = sum(n for k, n in cold_calls.items() if not k.startswith("WATCH"))
                print(f"  API requests {non_watch} (+ watches), {non_watch / max(done, 1):.2f} per reconcile")
                print_calls("by kind:", cold_calls, done)

                steady_began = time.monotonic()
                before_cpu = proc_cpu(pid)
                peak = memory["VmHWM"]
                while time.monotonic() - steady_began < args.steady:
                    await asyncio.sleep(1)
                    peak = max(peak, proc_status(pid)["VmHWM"])
                window = time.monotonic() - steady_began
                steady_calls, mark = tally(api, mark)
                steady_done = await reconciles(client) - done
                writes = sum(n for k, n in steady_calls.items() if k.split()[0] in WRITE_METHODS)
                reads = sum(n for k, n in steady_calls.items() if k.split()[0] in ("GET", "LIST"))
                print(f"\nsteady state, nothing changed, {window:.0f} s, requeue every {args.requeue:.0f} s")
                print(f"  reconciles {steady_done} ({steady_done / window:,.0f} per s)")
                print(f"  writes {writes}   goal 0")
                per = reads / max(steady_done, 1)
                print(f"  reads {reads} ({reads / window:,.0f} per s, {per:.2f} per reconcile)")
                print(f"  controller CPU {proc_cpu(pid) - before_cpu:.1f} s over the window")
                print(f"  controller peak RSS {peak / 1024:.0f} MB")
                print_calls("by kind:", steady_calls, steady_done)
            await controller.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gslbs", type=int, default=10_000)
    parser.add_argument("--namespaces", type=int, default=20)
    parser.add_argument("--workers", type=int, default=16)
    # k8gb's default resync period (and ours): a shorter one puts resyncs into the cold start.
    parser.add_argument("--requeue", type=float, default=30.0)
    parser.add_argument("--steady", type=float, default=35.0)
    parser.add_argument("--no-dns", action="store_true", help="without the built-in DNS (and its zone feed)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
