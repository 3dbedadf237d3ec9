"""The SQLite file is locked by another process, or its disk is full, while Gslbs are written and
reconciled. Writes are refused with 503 ServiceUnavailable (and nothing half-written lands), reads
and DNS keep answering (DNS even follows a health change), the failing status writes show in the
metrics and back off, and when the fault clears everything converges with nothing lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import shutil
import sqlite3
import subprocess
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from tests.support import fleet, tally
from tests.support.instance import Backend, a_records, eventually, running

FAULT_SECONDS = 6.0  # longer than the store's 5 s busy timeout, so a locked write really gives up
BACKOFF_BASE = 0.045  # the work queue's first backoff (0.05 s) less its 10 % jitter

Fault = Callable[[Path], contextlib.AbstractAsyncContextManager[None]]


@contextlib.asynccontextmanager
async def locked(data_dir: Path) -> AsyncIterator[None]:
    """Another process's connection holds an exclusive lock on the file (sqlite3 in a thread)."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(data_dir / "gslb.db", isolation_level=None)
        try:
            conn.execute("BEGIN EXCLUSIVE")
            held.set()
            release.wait(60)
            conn.execute("ROLLBACK")
        finally:
            conn.close()

    thread = threading.Thread(target=hold, name="sqlite-lock-holder")
    thread.start()
    try:
        assert await asyncio.to_thread(held.wait, 10), "could not take the lock"
        yield
    finally:
        release.set()
        await asyncio.to_thread(thread.join, 10)


@contextlib.asynccontextmanager
async def disk_full(data_dir: Path) -> AsyncIterator[None]:
    """The file system holding the store has no space left (filled by a file on the same tmpfs)."""
    filler = data_dir / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0" * 65536)
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0" * 512)
    finally:
        os.close(fd)
    try:
        yield
    finally:
        filler.unlink()


@contextlib.contextmanager
def small_disk(where: Path, size: str = "8m"):
    """A tmpfs of its own for the data dir, so filling it fills nothing else."""
    where.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


async def reconcile_errors(client: httpx.AsyncClient, names: list[str]) -> dict[str, float]:
    text = await fleet.metrics(client)
    return {n: fleet.metric(text, "k8gb_gslb_errors_total", namespace=fleet.NAMESPACE, name=n) for n in names}


async def health_of(client: httpx.AsyncClient, name: str) -> str | None:
    response = await client.get(f"{fleet.COLLECTION}/{name}")
    status = response.json().get("status") or {}
    return (status.get("serviceHealth") or {}).get(fleet.host_of(name))


@pytest.mark.parametrize(
    ("fault", "cause"), [(locked, "database is locked"), (disk_full, "database or disk is full")]
)
async def test_store_fault_refuses_writes_keeps_reads_and_dns_and_recovers(
    tmp_path: Path, backend: Backend, services_file: str, fault: Fault, cause: str
) -> None:
    with contextlib.ExitStack() as stack:
        data_dir = tmp_path / "data"
        if fault is disk_full:
            stack.enter_context(small_disk(data_dir))
        settings = fleet.settings(services_file, GSLB_DATA_DIR=str(data_dir))
        async with (
            running(tmp_path, **settings) as gslb,
            httpx.AsyncClient(base_url=gslb.api, timeout=30) as client,
            fleet.Writer(client, "s", pause=0.1) as writer,
        ):
            await eventually(lambda: writer.has_acked(5), True)
            before = list(writer.acked)
            # Acknowledged means stored; the reconcile that puts it in DNS follows within moments.
            await eventually(lambda: fleet.unanswered(gslb, before), [])

            async with fault(data_dir):
                tally.add("faults", f"sqlite {fault.__name__.replace('_', ' ')}")
                loop = asyncio.get_running_loop()
                started = loop.time()
                errors_before = await reconcile_errors(client, before)
                # Writes: a Kubernetes Status saying why, and when to come back.
                refused = await client.post(fleet.COLLECTION, json=fleet.manifest("refused"))
                assert refused.status_code == 503, refused.text
                body = refused.json()
                assert (body["kind"], body["reason"]) == ("Status", "ServiceUnavailable")
                assert cause in body["message"] and refused.headers["Retry-After"] == "1"
                # Reads keep answering, and so does DNS, which still follows health.
                assert {i["metadata"]["name"] for i in await fleet.listed(client)} >= set(before)
                assert (await client.get(f"{fleet.COLLECTION}/{before[0]}")).status_code == 200
                await backend.stop()
                await eventually(lambda: a_records(gslb.dns, fleet.host_of(before[-1])), None)
                await asyncio.sleep(max(0.0, FAULT_SECONDS - (loop.time() - started)))
                window = loop.time() - started
                errors_after = await reconcile_errors(client, before)
                assert (await client.get("/readyz")).status_code == 200
            assert writer.statuses[503] >= 1, writer.statuses

            # The status writes that failed show in the metrics, and were retried with backoff.
            attempts = {n: errors_after[n] - errors_before[n] for n in before}
            assert all(a >= 1 for a in attempts.values()), attempts
            bound = 3 + math.log2(window / BACKOFF_BASE + 1)
            print(f"{fault.__name__}: reconcile attempts in {window:.1f}s: {attempts} (bound {bound:.1f})")
            assert max(attempts.values()) <= bound, f"hot loop: {attempts} in {window:.1f}s"

            # Cleared: the health change reaches status, and the backend's return reaches DNS.
            await eventually(lambda: health_of(client, before[0]), "Unhealthy", timeout=20)
            await backend.restart()
            await eventually(lambda: health_of(client, before[0]), "Healthy", timeout=20)
            await writer.stop()
            assert not writer.unknown
            refused_names = [*writer.refused, "refused"]
            items = await fleet.check_converged(client, gslb, writer.acked)
            assert not {i["metadata"]["name"] for i in items} & set(refused_names), "a refused write landed"
        tally.add("faults", "writes refused with 503 during faults", len(refused_names))
        tally.add("faults", "writes acknowledged during faults", len(writer.acked))
    shutil.rmtree(tmp_path / "data", ignore_errors=True)
