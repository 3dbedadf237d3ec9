"""Queries per second: the built-in DNS server against BIND9, same zone, same load, same core.

The zone has `--hosts` names (default 1,000), each with 2-3 A targets labelled `strategy: roundRobin`
(so ours shuffles every answer). Each server runs pinned with taskset to one core (ours in a
subprocess on uvloop, BIND as `named -g -n 1`); dnsperf runs on another core with EDNS0 (`-e`), four
clients, from a file of random host names. Prints each figure and the ratio ours/bind.

    .venv/bin/python bench/dns_vs_bind.py [--duration 10] [--profile]

`--profile` also runs our server under cProfile during a load run and prints where the time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ZONE = "cloud.example.com"
SEED = 1000


def hosts(count: int) -> list[tuple[str, list[str]]]:
    rng = random.Random(SEED)
    return [
        (
            f"host-{i}.{ZONE}",
            [f"10.{rng.randrange(256)}.{rng.randrange(256)}.{t + 1}" for t in range(rng.randint(2, 3))],
        )
        for i in range(count)
    ]


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port


# --- our server (subprocess entry) ----------------------------------------------------------------


async def serve(port: int, count: int) -> None:
    from app.dnsserver.server import DnsServer
    from app.dnsserver.zonetable import ZoneTable
    from app.domain.endpoint import Changes, Endpoint
    from app.domain.zones import parse_dns_zones

    table = ZoneTable(parse_dns_zones(f"example.com:{ZONE}:30"), {ZONE: [f"ns.{ZONE}"]})
    records = tuple(
        Endpoint(name, tuple(ips), "A", 30, (("strategy", "roundRobin"),)) for name, ips in hosts(count)
    )
    await table.apply(ZONE, Changes(create=records))
    server = DnsServer(table, "127.0.0.1", port)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    print("READY", flush=True)
    await stop.wait()
    await server.stop()
    print(f"served {server.queries} queries, {dict(server.responses)}", file=sys.stderr, flush=True)


def serve_main(port: int, count: int, profile: Path | None) -> None:
    from app.dnsserver.loop import install_uvloop

    install_uvloop()
    if profile is None:
        asyncio.run(serve(port, count))
        return
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        asyncio.run(serve(port, count))
    finally:
        profiler.disable()
        profiler.dump_stats(profile)


# --- BIND9 ------------------------------------------------------------------------------------------


def write_bind(directory: Path, port: int, count: int) -> Path:
    lines = [
        "$TTL 30",
        f"@ IN SOA ns.{ZONE}. hostmaster.{ZONE}. 1 3600 600 86400 30",
        f"@ IN NS ns.{ZONE}.",
        "ns IN A 127.0.0.1",
    ]
    for name, ips in hosts(count):
        lines.extend(f"{name}. IN A {ip}" for ip in ips)
    (directory / "zone.db").write_text("\n".join(lines) + "\n")
    conf = directory / "named.conf"
    conf.write_text(
        f"""options {{
    directory "{directory}";
    pid-file none;
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
}};
controls {{ }};
zone "{ZONE}" {{ type primary; file "zone.db"; }};
"""
    )
    return conf


# --- load -------------------------------------------------------------------------------------------


def wait_ready(port: int, timeout: float = 20.0) -> None:
    import dns.message
    import dns.query

    deadline = time.monotonic() + timeout
    query = dns.message.make_query(f"host-0.{ZONE}", "A")
    while time.monotonic() < deadline:
        try:
            if dns.query.udp(query, "127.0.0.1", port=port, timeout=0.5).answer:
                return
        except (OSError, dns.exception.Timeout):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"no answer on port {port}")


def dnsperf(port: int, queries: Path, core: str, duration: int, clients: int) -> tuple[float, str]:
    out = subprocess.run(
        [
            "taskset",
            "-c",
            core,
            "dnsperf",
            "-s",
            "127.0.0.1",
            "-p",
            str(port),
            "-d",
            str(queries),
            "-e",
            "-c",
            str(clients),
            "-l",
            str(duration),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    qps = re.search(r"Queries per second:\s+([\d.]+)", out)
    lost = re.search(r"Queries lost:\s+(\d+ \([\d.]+%\))", out)
    if qps is None:
        raise RuntimeError(f"dnsperf said:\n{out}")
    return float(qps.group(1)), lost.group(1) if lost else "?"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_server(cmd: list[str], port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_ready(port)
    except Exception:
        process.kill()
        print(process.communicate()[1].decode(errors="replace"), file=sys.stderr)
        raise
    return process


def stop_server(process: subprocess.Popen[bytes]) -> str:
    process.send_signal(signal.SIGTERM)
    try:
        _, err = process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
    return err.decode(errors="replace")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--server-core", default="0")
    parser.add_argument("--load-core", default="1")
    parser.add_argument("--only", choices=["ours", "bind"], default=None)
    parser.add_argument("--rounds", type=int, default=2, help="alternating runs per server; the best counts")
    parser.add_argument(
        "--profile", action="store_true", help="also profile our server under load (cProfile)"
    )
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--profile-to", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_main(args.serve, args.hosts, args.profile_to)
        return

    with tempfile.TemporaryDirectory(prefix="dnsbench-") as tmp:
        directory = Path(tmp)
        rng = random.Random(SEED + 1)
        names = [name for name, _ in hosts(args.hosts)]
        queries = directory / "queries.txt"
        queries.write_text("".join(f"{rng.choice(names)} A\n" for _ in range(20_000)))
        pin = ["taskset", "-c", args.server_core]
        runs: dict[str, list[tuple[float, str]]] = {"ours": [], "bind": []}
        per_cpu: dict[str, list[float]] = {"ours": [], "bind": []}
        ours_port, bind_port = free_port(), free_port()
        conf = write_bind(directory, bind_port, args.hosts)
        servers = {
            "ours": (
                [*pin, sys.executable, __file__, "--serve", str(ours_port), "--hosts", str(args.hosts)],
                ours_port,
            ),
            "bind": ([*pin, "named", "-g", "-n", "1", "-c", str(conf)], bind_port),
        }
        for _ in range(args.rounds):  # alternate, so that a noisy neighbour hurts both alike
            for name in [n for n in servers if args.only in (None, n)]:
                cmd, port = servers[name]
                process = run_server(cmd, port)
                before = cpu_seconds(process.pid)
                qps, lost = dnsperf(port, queries, args.load_core, args.duration, args.clients)
                used = cpu_seconds(process.pid) - before
                runs[name].append((qps, lost))
                per_cpu[name].append(qps * args.duration / used if used else 0.0)
                stop_server(process)

        print(
            f"zone: {args.hosts} hosts, 2-3 A each, roundRobin; "
            f"dnsperf -e -c {args.clients} -l {args.duration}"
        )
        best: dict[str, float] = {}
        for name, results in runs.items():
            if results:
                best[name] = max(qps for qps, _ in results)
                figures = ", ".join(f"{qps:.0f} (lost {lost})" for qps, lost in results)
                print(f"{name:>5}: best {best[name]:>8.0f} queries/s; runs: {figures}")
        # Throughput suffers when neighbours share the server's core; work per CPU-second does not.
        for name, values in per_cpu.items():
            if values:
                print(f"{name:>5}: {max(values):>8.0f} queries per CPU-second of the server (best)")
        if len(best) == 2:
            print(f"ratio ours/bind (best of {args.rounds}): {best['ours'] / best['bind']:.2f}")
            print(f"ratio ours/bind per CPU-second: {max(per_cpu['ours']) / max(per_cpu['bind']):.2f}")

        if args.profile:
            profile = directory / "ours.prof"
            port = free_port()
            cmd = [
                *pin,
                sys.executable,
                __file__,
                "--serve",
                str(port),
                "--hosts",
                str(args.hosts),
                "--profile-to",
                str(profile),
            ]
            process = run_server(cmd, port)
            qps, _ = dnsperf(port, queries, args.load_core, args.duration, args.clients)
            stop_server(process)
            import pstats

            print(f"\nprofiled run (cProfile slows it down): {qps:.0f} queries/s; top functions by own time:")
            pstats.Stats(str(profile)).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
