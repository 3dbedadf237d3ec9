"""A DNS latency prober in its own process: asks one name again and again until SIGTERM, then prints
JSON `{"latencies_ms": [...], "failures": [...]}` on stdout.

Its own process so that the load a test generates in its event loop does not count as DNS latency.

    python -m tests.support.dnsprobe HOST PORT NAME EXPECTED_IP[,IP...] [TIMEOUT_S]
"""

from __future__ import annotations

import json
import signal
import sys
import time
from types import FrameType

import dns.exception
import dns.message
import dns.query
import dns.rdatatype

_stop = False


def _on_term(signum: int, frame: FrameType | None) -> None:
    global _stop
    _stop = True


def probe(host: str, port: int, name: str, expected: set[str], timeout: float) -> dict[str, list]:
    latencies: list[float] = []
    failures: list[str] = []
    while not _stop:
        query = dns.message.make_query(name, "A")
        started = time.perf_counter()
        try:
            response = dns.query.udp(query, host, port=port, timeout=timeout)
        except (dns.exception.DNSException, OSError) as exc:
            failures.append(f"{type(exc).__name__}: {exc}")
            continue
        latencies.append((time.perf_counter() - started) * 1000)
        ips = {rr.address for rrset in response.answer if rrset.rdtype == dns.rdatatype.A for rr in rrset}
        if ips != expected:
            failures.append(f"answered {sorted(ips)} rcode {response.rcode()}")
        time.sleep(0.002)
    return {"latencies_ms": latencies, "failures": failures}


def main(argv: list[str]) -> None:
    signal.signal(signal.SIGTERM, _on_term)
    host, port, name, expected = argv[0], int(argv[1]), argv[2], set(argv[3].split(","))
    timeout = float(argv[4]) if len(argv) > 4 else 2.0
    print("ready", flush=True)
    print(json.dumps(probe(host, port, name, expected, timeout)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
