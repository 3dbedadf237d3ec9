"""A write acknowledged by the store survives SIGKILL of the process, whole (no torn object)."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from pathlib import Path

from app.domain.gslb import GROUP
from app.stores.sqlite import SqliteStore

REPO = Path(__file__).resolve().parents[2]

# The child creates Gslbs as fast as it can (each with a large annotation so writes take real I/O)
# and prints "ack <name>" only after create() returned.
CHILD = """
import asyncio, sys
from pathlib import Path
from app.stores.sqlite import SqliteStore
from tests.support.gslb_factory import make_gslb

async def main(data_dir, prefix):
    store = SqliteStore(Path(data_dir))
    await store.start()
    print("ready", flush=True)
    for i in range(100_000):
        gslb = make_gslb(f"{prefix}-{i}")
        gslb.metadata.annotations = {"payload": f"{prefix}-{i}:" + "x" * 20_000}
        await store.create(gslb)
        print(f"ack {prefix}-{i}", flush=True)

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def run_and_kill(data_dir: Path, prefix: str, kill_after: int) -> list[str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CHILD,
        str(data_dir),
        prefix,
        stdout=asyncio.subprocess.PIPE,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.stdout is not None
    acked: list[str] = []
    try:
        assert (await asyncio.wait_for(proc.stdout.readline(), 30)).strip() == b"ready"
        while len(acked) < kill_after:
            line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().split()
            assert line and line[0] == "ack", f"child stopped early: {line}"
            acked.append(line[1])
        proc.send_signal(signal.SIGKILL)  # most likely in the middle of the next write
        # Acks already printed before the kill count too.
        rest = await asyncio.wait_for(proc.stdout.read(), 30)
        acked += [ln.split()[1] for ln in rest.decode().splitlines() if ln.startswith("ack ")]
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return acked


async def test_acked_creates_survive_sigkill(tmp_path: Path) -> None:
    rng = random.Random(20240611)
    all_acked: list[str] = []
    for round_no in range(4):
        acked = await run_and_kill(tmp_path, f"r{round_no}", rng.randint(1, 25))
        all_acked += acked

        store = SqliteStore(tmp_path)
        await store.start()
        try:
            items, _ = await store.list(GROUP)  # parses every row: a torn object would fail here
        finally:
            await store.close()
        by_name = {g.name: g for g in items}
        missing = [name for name in all_acked if name not in by_name]
        assert not missing, f"round {round_no}: acknowledged but lost: {missing}"
        for name in all_acked:
            annotations = by_name[name].metadata.annotations or {}
            assert annotations["payload"].startswith(f"{name}:")
            assert len(annotations["payload"]) == len(name) + 1 + 20_000
        # At most the one write in flight at the kill may have committed without its ack.
        assert len(by_name) - len(all_acked) <= round_no + 1
