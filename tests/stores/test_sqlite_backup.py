"""Day-2 care of the embedded store: `gslb backup` while the server writes, restoring it, and a data
directory written by a newer pygslb refused rather than rewritten."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx

from app.stores.sqlite import SCHEMA_VERSION
from tests.support.gslb_factory import gslb_body
from tests.support.instance import ROOT, running

COLLECTION = "/apis/k8gb.io/v1beta1/namespaces/test-gslb/gslbs"


def gslb(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )


async def versions(client: httpx.AsyncClient) -> dict[str, str]:
    items = (await client.get(COLLECTION)).json()["items"]
    return {i["metadata"]["name"]: i["metadata"]["resourceVersion"] for i in items}


async def test_a_backup_taken_while_serving_restores_every_gslb(tmp_path: Path) -> None:
    """Copying gslb.db while the server runs misses what is still in its write-ahead log."""
    copy = tmp_path / "backup.db"
    async with running(tmp_path, "live", DNS_ADDRESS="") as live:
        async with httpx.AsyncClient(base_url=live.api, timeout=10) as client:
            for i in range(20):
                body = gslb_body(f"app-{i}", host=f"app-{i}.cloud.example.com")
                assert (await client.post(COLLECTION, json=body)).status_code == 201
            done = await asyncio.to_thread(gslb, "backup", str(copy), "--data-dir", live.env["GSLB_DATA_DIR"])
            assert done.returncode == 0, done.stderr
            assert done.stdout.startswith("20 Gslbs copied")
            after = await versions(client)  # reconciles go on writing status meanwhile
    restored = tmp_path / "restored" / "data"
    restored.mkdir(parents=True)
    shutil.copy(copy, restored / "gslb.db")
    async with running(tmp_path, "restored", DNS_ADDRESS="") as again:
        async with httpx.AsyncClient(base_url=again.api, timeout=10) as client:
            restored_versions = await versions(client)
    assert restored_versions.keys() == after.keys()  # the last POSTs were still in the write-ahead log


def test_a_backup_refuses_to_overwrite_and_names_a_missing_store(tmp_path: Path) -> None:
    taken = tmp_path / "taken.db"
    taken.write_text("mine")
    empty = tmp_path / "empty"
    refused = gslb("backup", str(taken), "--data-dir", str(empty))
    assert refused.returncode == 1 and "no store at" in refused.stderr
    assert taken.read_text() == "mine"


async def test_a_store_written_by_a_newer_pygslb_is_refused_at_start(tmp_path: Path) -> None:
    """Read and rewritten by an older pygslb, a newer one's fields would be dropped without a word."""
    async with running(tmp_path, "old", DNS_ADDRESS=""):
        pass
    db = tmp_path / "old" / "data" / "gslb.db"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    started = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "app", "serve", "--dns-address", ""],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "GSLB_DATA_DIR": str(db.parent)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode == 1
    assert "was written by a newer pygslb" in started.stderr, started.stderr


def test_a_failed_backup_leaves_no_half_copy(tmp_path: Path) -> None:
    """A file that is no pygslb store fails the copy; the partial destination is removed, so the next
    try is not refused with 'exists'."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "gslb.db").write_bytes(b"not a database, just bytes" * 100)
    copy = tmp_path / "copy.db"
    failed = gslb("backup", str(copy), "--data-dir", str(data))
    assert failed.returncode == 1 and "backup failed" in failed.stderr
    assert not copy.exists()
