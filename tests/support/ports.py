"""Free ports for servers a test starts later, out of the way of outgoing connections.

A port found by binding to port 0 comes from the kernel's ephemeral range, the same range every
outgoing connection takes its local port from. Between the probe and the server's own bind, any
connection on the machine can take it ("address already in use": CI saw it once). So the port is
picked at random below the ephemeral range, where only other listeners go, and checked free.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

_EPHEMERAL = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST = 10_000


def _below_ephemeral() -> range | None:
    try:
        first = int(_EPHEMERAL.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return range(_LOWEST, first) if first - _LOWEST >= 1000 else None


def _free_on_all(port: int, hosts: tuple[str, ...]) -> bool:
    try:
        for host in hosts:
            for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                with socket.socket(socket.AF_INET, kind) as probe:
                    probe.bind((host, port))
    except OSError:
        return False
    return True


def free_port(*hosts: str) -> int:
    """A port free for both TCP and UDP (DNS needs both on one number) on every given loopback
    address (default 127.0.0.1)."""
    hosts = hosts or ("127.0.0.1",)
    pool = _below_ephemeral()
    for _ in range(200):
        if pool is not None:
            port = random.choice(pool)
        else:  # no Linux range to stay out of: let the kernel choose
            with socket.socket() as probe:
                probe.bind((hosts[0], 0))
                port = probe.getsockname()[1]
        if _free_on_all(port, hosts):
            return port
    raise RuntimeError(f"no free TCP+UDP port on {', '.join(hosts)}")
