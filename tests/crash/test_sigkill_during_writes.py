"""`gslb serve` killed with SIGKILL at random points of a burst of HTTP writes, round after round.

Each round, several clients create, update (a revision annotation and a payload that repeats it) and
delete Gslbs as fast as they can, and remember what the API acknowledged. The process is killed at a
seeded random moment; restarted on the same data directory, it must hold every acknowledged write
(creates with their uid, the latest acknowledged revision or the one in flight, no acknowledged
delete), nothing nobody wrote, no torn object (the payload agrees with its revision, every row
parses, SQLite's integrity check passes), and reconcile everything into DNS again.
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from app.domain.gslb import Gslb
from tests.support import fleet, tally
from tests.support.instance import Instance, instance_env

SEED = 20240611
ROUNDS = 6
WRITERS = 6
PAYLOAD = 2_000  # bytes of annotation per write, so a write is real I/O
REV = "pygslb.test/rev"
BODY = "pygslb.test/payload"
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}


def payload(name: str, rev: int) -> str:
    return f"{name}:{rev}:" + "x" * PAYLOAD


@dataclass
class Ledger:
    """What the clients were told, and what they asked for without learning the outcome."""

    uids: dict[str, str] = field(default_factory=dict)  # acknowledged creates
    revs: dict[str, int] = field(default_factory=dict)  # latest acknowledged revision
    deleted: set[str] = field(default_factory=set)  # acknowledged deletes
    maybe_created: set[str] = field(default_factory=set)
    maybe_rev: dict[str, int] = field(default_factory=dict)
    maybe_deleted: set[str] = field(default_factory=set)
    acked: int = 0
    in_flight: int = 0


async def write_until_killed(
    client: httpx.AsyncClient, ledger: Ledger, prefix: str, rng: random.Random
) -> None:
    """One client: create, update or delete its own Gslbs until the server goes away."""
    mine: list[str] = []
    i = 0
    while True:
        op = rng.random()
        if not mine or op < 0.5:
            name, i = f"{prefix}-{i}", i + 1
            body = fleet.manifest(name, annotations={REV: "0", BODY: payload(name, 0)})
            try:
                response = await client.post(fleet.COLLECTION, json=body)
            except httpx.HTTPError:
                ledger.maybe_created.add(name)
                ledger.in_flight += 1
                return
            assert response.status_code == 201, response.text
            ledger.uids[name] = response.json()["metadata"]["uid"]
            ledger.revs[name] = 0
            mine.append(name)
        elif op < 0.85:
            name = rng.choice(mine)
            rev = ledger.revs[name] + 1
            patch = {"metadata": {"annotations": {REV: str(rev), BODY: payload(name, rev)}}}
            try:
                response = await client.patch(
                    f"{fleet.COLLECTION}/{name}", content=json.dumps(patch), headers=MERGE_PATCH
                )
            except httpx.HTTPError:
                ledger.maybe_rev[name] = rev
                ledger.in_flight += 1
                return
            assert response.status_code == 200, response.text
            ledger.revs[name] = rev
        else:
            name = mine.pop(rng.randrange(len(mine)))
            try:
                response = await client.delete(f"{fleet.COLLECTION}/{name}")
            except httpx.HTTPError:
                ledger.maybe_deleted.add(name)
                ledger.in_flight += 1
                return
            assert response.status_code == 200, response.text
            ledger.deleted.add(name)
        ledger.acked += 1


def check_file(db: Path) -> int:
    """SQLite's own integrity check, and every stored row parses as a Gslb; returns the row count."""
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = conn.execute("SELECT body FROM gslbs").fetchall()
    finally:
        conn.close()
    for (body,) in rows:
        Gslb.model_validate(json.loads(body))
    return len(rows)


def check_against(items: list[dict], ledger: Ledger) -> list[str]:
    """Every acknowledged write is there, whole; nothing else is. Returns the names present."""
    stored = {item["metadata"]["name"]: item for item in items}
    assert len(stored) == len(items), "a name listed twice"
    for name, uid in ledger.uids.items():
        if name in ledger.deleted:
            assert name not in stored, f"{name}: acknowledged delete undone"
        elif name not in ledger.maybe_deleted:
            assert name in stored, f"{name}: acknowledged create lost"
            assert stored[name]["metadata"]["uid"] == uid, f"{name}: recreated"
    unknown = set(stored) - set(ledger.uids) - ledger.maybe_created
    assert not unknown, f"objects nobody created: {sorted(unknown)[:5]}"
    for name, item in stored.items():
        annotations = item["metadata"]["annotations"]
        rev = int(annotations[REV])
        assert annotations[BODY] == payload(name, rev), f"{name}: torn object"
        allowed = {ledger.revs.get(name, 0)} | (
            {ledger.maybe_rev[name]} if name in ledger.maybe_rev else set()
        )
        assert rev in allowed, f"{name}: revision {rev}, acknowledged {ledger.revs.get(name)}"
    return sorted(stored)


async def test_acknowledged_writes_survive_sigkill_at_random_points(
    tmp_path: Path, services_file: str
) -> None:
    rng = random.Random(SEED)
    data = tmp_path / "data"
    ledger = Ledger()
    for round_no in range(ROUNDS + 1):
        env = instance_env(
            tmp_path, f"round{round_no}", **fleet.settings(services_file, GSLB_DATA_DIR=str(data))
        )
        (tmp_path / f"round{round_no}").mkdir()
        gslb = Instance(env, tmp_path / f"round{round_no}" / "serve.log")
        await gslb.start()
        try:
            async with httpx.AsyncClient(base_url=gslb.api, timeout=10) as client:
                if round_no:  # after a kill: everything acknowledged is there, whole, and answers in DNS
                    present = check_against(await fleet.listed(client), ledger)
                    await fleet.check_converged(client, gslb, present, may_exist=present)
                    tally.add("crash", "kills survived")
                if round_no == ROUNDS:
                    break
                writers = [
                    asyncio.create_task(
                        write_until_killed(client, ledger, f"r{round_no}w{k}", random.Random(rng.random()))
                    )
                    for k in range(WRITERS)
                ]
                await asyncio.sleep(rng.uniform(0.05, 1.5))
                await gslb.kill()
                await asyncio.gather(*writers)
        finally:
            await gslb.stop()
        rows = check_file(data / "gslb.db")
        assert rows >= len(set(ledger.uids) - ledger.deleted - ledger.maybe_deleted)
    tally.add("crash", "writes acknowledged before kills", ledger.acked)
    tally.add("crash", "writes in flight at kills", ledger.in_flight)
    print(f"crash: {ROUNDS} kills, {ledger.acked} acknowledged writes, {ledger.in_flight} in flight")
