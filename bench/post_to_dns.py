"""POST → DNS answer latency: the time from sending a Gslb to the moment the built-in DNS server
answers its host with the expected address, over N distinct Gslbs, against a real `gslb serve`.

    .venv/bin/python bench/post_to_dns.py [--count 200]

Prints p50, p90, p99 and max in milliseconds (goal: p50 < 20 ms, p99 < 100 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import dns.asyncquery
import dns.message
import dns.rcode
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.instance import Backend, running, services_yaml  # noqa: E402


def manifest(i: int) -> dict:
    return {
        "apiVersion": "k8gb.io/v1beta1",
        "kind": "Gslb",
        "metadata": {"name": f"app-{i}", "namespace": "bench"},
        "spec": {
            "ingress": {
                "rules": [
                    {
                        "host": f"app-{i}.cloud.example.com",
                        "http": {
                            "paths": [
                                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "svc"}}}
                            ]
                        },
                    }
                ]
            },
            "strategy": {"type": "roundRobin", "dnsTtlSeconds": 30},
        },
    }


async def answered(server: tuple[str, int], name: str) -> bool:
    query = dns.message.make_query(name, "A")
    response = await dns.asyncquery.udp(query, server[0], port=server[1], timeout=1)
    return response.rcode() == dns.rcode.NOERROR and bool(response.answer)


async def main(count: int) -> None:
    backend = await Backend().start()
    with tempfile.TemporaryDirectory() as tmp:
        services = Path(tmp) / "services.yaml"
        services.write_text(services_yaml({"bench/svc": [f"127.0.0.1:{backend.port}"]}, interval=5))
        env = {"GSLB_SERVICES_FILE": str(services), "CLUSTER_EXPOSED_IPS": "10.0.0.1", "LOG_LEVEL": "warn"}
        async with (
            running(Path(tmp), **env) as gslb,
            httpx.AsyncClient(base_url=gslb.api, timeout=10) as client,
        ):
            url = "/apis/k8gb.io/v1beta1/namespaces/bench/gslbs"
            latencies: list[float] = []
            for i in range(count):
                start = time.perf_counter()
                response = await client.post(url, json=manifest(i))
                assert response.status_code == 201, response.text
                while not await answered(gslb.dns, f"app-{i}.cloud.example.com"):
                    await asyncio.sleep(0.0005)
                latencies.append((time.perf_counter() - start) * 1000)
    await backend.stop()
    latencies.sort()
    q = statistics.quantiles(latencies, n=100)
    print(f"POST → DNS answer over {count} Gslbs (one gslb serve process, uvloop, loopback):")
    print(f"  p50 {q[49]:.1f} ms   p90 {q[89]:.1f} ms   p99 {q[98]:.1f} ms   max {latencies[-1]:.1f} ms")
    print(
        f"  goal: p50 < 20 ms ({'met' if q[49] < 20 else 'missed'}), p99 < 100 ms "
        f"({'met' if q[98] < 100 else 'missed'})"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    asyncio.run(main(parser.parse_args().count))
