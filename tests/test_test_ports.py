"""The test suite's free ports stay out of the kernel's ephemeral range, where an outgoing connection
could take one between the check and the server's bind (CI saw "address already in use" once)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.support.ports import free_port


def test_free_ports_are_below_the_ephemeral_range_and_free_on_every_host() -> None:
    path = Path("/proc/sys/net/ipv4/ip_local_port_range")
    if not path.exists():
        pytest.skip("no Linux ephemeral port range here")
    first = int(path.read_text().split()[0])
    hosts = ("127.0.0.1", "127.0.0.2")
    for _ in range(20):
        port = free_port(*hosts)
        assert 10_000 <= port < first
        for host in hosts:
            for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                with socket.socket(socket.AF_INET, kind) as server:
                    server.bind((host, port))


def test_a_port_in_use_is_never_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        taken = busy.getsockname()[1]
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            spare = probe.getsockname()[1]
        picks = iter([taken, taken, spare])
        monkeypatch.setattr("tests.support.ports._below_ephemeral", lambda: range(taken, taken + 1))
        monkeypatch.setattr("tests.support.ports.random.choice", lambda pool: next(picks))
        assert free_port() == spare
