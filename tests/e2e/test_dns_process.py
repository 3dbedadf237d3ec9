"""`gslb serve` with DNS in worker processes: the answers follow the API, and no worker outlives the
main process, whether it is stopped with SIGTERM or killed outright."""

from __future__ import annotations

import asyncio
import signal
import socket
from pathlib import Path

import dns.exception
import dns.rcode
import httpx
import pytest

from tests.support import fleet
from tests.support.instance import Backend, Instance, a_records, eventually, query, running, services_yaml

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]


def children(pid: int) -> set[int]:
    """The live child processes of `pid` (zombies excluded)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.update(int(c) for c in (task / "children").read_text().split())
    return {c for c in found if alive(c)}


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def gone(pids: set[int]) -> set[int]:
    return {p for p in pids if alive(p)}


@pytest.mark.parametrize("ending", ["sigterm", "sigkill"])
async def test_workers_answer_what_the_api_wrote_and_end_with_the_main_process(
    tmp_path: Path, ending: str
) -> None:
    backend = await Backend().start()
    services = tmp_path / "services.yaml"
    services.write_text(services_yaml({fleet.SERVICE: [f"127.0.0.1:{backend.port}"]}))
    try:
        async with running(tmp_path, **fleet.settings(str(services), DNS_WORKERS="2")) as gslb:
            assert gslb.process is not None
            workers = children(gslb.process.pid)
            assert len(workers) == 2, gslb.log()
            async with httpx.AsyncClient(base_url=gslb.api, timeout=10) as client:
                created = await client.post(fleet.COLLECTION, json=fleet.manifest("app"))
                assert created.status_code == 201, created.text
            await eventually(lambda: a_records(gslb.dns, fleet.host_of("app")), fleet.EXPOSED)
            if ending == "sigterm":
                gslb.process.send_signal(signal.SIGTERM)
                assert await gslb.process.wait() == 0, gslb.log()
            else:
                await gslb.kill()  # no chance to stop them: each worker sees its channel close
            await eventually(lambda: gone(workers), set())
    finally:
        await backend.stop()


async def test_a_restart_never_denies_a_stored_gslbs_host(tmp_path: Path) -> None:
    """From the moment a restarted instance answers DNS until its first reconciles are done, a host it
    serves gets SERVFAIL (resolvers try the zone's other servers and cache nothing for long), never an
    authoritative NXDOMAIN cached for the negative TTL. An edge server that never answers makes each
    reconcile wait on peer discovery, so the window is long enough to see."""
    backend = await Backend().start()
    services = tmp_path / "services.yaml"
    services.write_text(services_yaml({fleet.SERVICE: [f"127.0.0.1:{backend.port}"]}))
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    env = fleet.settings(
        str(services),
        EXT_GSLB_CLUSTERS_GEO_TAGS="eu,us",
        EDGE_DNS_SERVERS=f"127.0.0.1:{silent.getsockname()[1]}",
    )
    host = fleet.host_of("app")
    try:
        async with running(tmp_path, **env) as gslb:
            async with httpx.AsyncClient(base_url=gslb.api, timeout=10) as client:
                created = await client.post(fleet.COLLECTION, json=fleet.manifest("app"))
                assert created.status_code == 201, created.text
            await eventually(lambda: a_records(gslb.dns, host), fleet.EXPOSED, timeout=15)
            restarted = Instance(gslb.env, tmp_path / "gslb" / "restart.log")

        seen: list[str] = []

        async def watch() -> None:
            while True:
                try:
                    response = await query(restarted.dns, host, timeout=0.2)
                except (dns.exception.Timeout, OSError):
                    continue  # not listening yet
                seen.append(dns.rcode.to_text(response.rcode()))
                if response.answer:
                    return
                await asyncio.sleep(0.01)

        watcher = asyncio.create_task(watch())
        try:
            await restarted.start(timeout=30)
            await asyncio.wait_for(watcher, timeout=30)
        finally:
            watcher.cancel()
            await restarted.stop()
        assert "NXDOMAIN" not in seen, seen
        assert "SERVFAIL" in seen and seen[-1] == "NOERROR", seen
    finally:
        silent.close()
        await backend.stop()
