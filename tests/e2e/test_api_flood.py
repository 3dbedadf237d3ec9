"""One host holding API connections by the hundred, more than `gslb serve` has file descriptors, starves
neither its health probes nor another client: the API keeps below half the open-files limit
(GSLB_API_MAX_CONNECTIONS), and a new connection beyond it closes one of the flooding host's. Before,
the flood took every descriptor: /healthz went unanswered and the probes' connections failed, so a
healthy service stayed Unhealthy and its DNS answers withdrawn."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import httpx
import pytest

from tests.support.gslb_factory import gslb_body
from tests.support.instance import Backend, Instance, a_records, eventually, instance_env, services_yaml

pytestmark = pytest.mark.e2e
HOST = "shop.cloud.example.com"
OPEN_FILES = 256
FLOOD = 3 * OPEN_FILES


async def hold(host: str, port: int, stop: asyncio.Event, opened: list[int]) -> None:
    """One of the flood: a connection that sends nothing, opened again as soon as it is closed."""
    while not stop.is_set():
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 2)
        except (OSError, TimeoutError):
            await asyncio.sleep(0.05)
            continue
        opened[0] += 1
        with contextlib.suppress(OSError):
            stopped = asyncio.create_task(stop.wait())
            closed = asyncio.create_task(reader.read())
            await asyncio.wait({stopped, closed}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            closed.cancel()
        writer.close()


async def test_a_flood_of_held_connections_starves_neither_the_probes_nor_healthz(tmp_path: Path) -> None:
    backend = await Backend(status=503).start()
    services = tmp_path / "services.yaml"
    services.write_text(services_yaml({"test-gslb/shop": [f"127.0.0.1:{backend.port}"]}))
    (tmp_path / "gslb").mkdir()
    env = instance_env(
        tmp_path,
        "gslb",
        GSLB_SERVICES_FILE=str(services),
        DNS_ZONES="example.com:cloud.example.com:30",
        CLUSTER_EXPOSED_IPS="10.0.0.1",
        GSLB_API_HEADER_TIMEOUT_SECONDS="600",  # the cap alone, not the head timeout, holds the flood
    )
    gslb = Instance(env, tmp_path / "gslb" / "serve.log", open_files=(OPEN_FILES, OPEN_FILES))
    await gslb.start()
    stop = asyncio.Event()
    flood: list[asyncio.Task[None]] = []
    try:
        async with httpx.AsyncClient(base_url=gslb.api, timeout=10) as client:
            body = gslb_body("shop", host=HOST, service="shop")
            created = await client.post("/apis/k8gb.io/v1beta1/namespaces/test-gslb/gslbs", json=body)
            assert created.status_code == 201, created.text
        await asyncio.sleep(1)
        assert await a_records(gslb.dns, HOST) is None  # the backend answers 503: Unhealthy

        host, port = env["API_ADDRESS"].split(":")
        opened = [0]
        flood = [asyncio.create_task(hold(host, int(port), stop, opened)) for _ in range(FLOOD)]
        await eventually(lambda: _at_least(opened, FLOOD), True, timeout=20)

        backend.status = 200  # a probe must now connect to the backend, and pass
        await eventually(lambda: a_records(gslb.dns, HOST), {"10.0.0.1"}, timeout=10)

        # another host (127.0.0.2) asks on a fresh connection, while the flood goes on
        transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
        async with httpx.AsyncClient(base_url=gslb.api, transport=transport, timeout=5) as other:
            for _ in range(5):
                started = time.monotonic()
                answer = await other.get("/healthz", headers={"Connection": "close"})
                assert answer.status_code == 200
                assert time.monotonic() - started < 2
        assert gslb.process is not None and gslb.process.returncode is None
    finally:
        stop.set()
        await asyncio.gather(*flood, return_exceptions=True)
        await gslb.stop()
        await backend.stop()
    assert "Too many open files" not in gslb.log()


async def _at_least(opened: list[int], count: int) -> bool:
    return opened[0] >= count


async def test_the_open_files_limit_is_raised_to_the_hard_limit_at_start(tmp_path: Path) -> None:
    """As Go's runtime does (so k8gb): the usual soft limit (1024) is far below the hard one."""
    (tmp_path / "gslb").mkdir()
    env = instance_env(tmp_path, "gslb", DNS_ADDRESS="", LOG_LEVEL="debug")
    gslb = Instance(env, tmp_path / "gslb" / "serve.log", open_files=(128, 512))
    await gslb.start()
    try:
        assert gslb.process is not None
        limits = Path(f"/proc/{gslb.process.pid}/limits").read_text()  # noqa: ASYNC240 - procfs, instant
        assert [line.split()[3:5] for line in limits.splitlines() if line.startswith("Max open files")] == [
            ["512", "512"]
        ]
        assert "open files limit raised from 128 to 512" in gslb.log()
        assert "API connections at most: 256" in gslb.log()  # half, below GSLB_API_MAX_CONNECTIONS
    finally:
        await gslb.stop()
