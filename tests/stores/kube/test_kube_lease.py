"""Leader election on a Lease: one leader at a time, hand-over on release, on a crash (two OS
processes) and when the leader cannot renew."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import kmock
import pytest

from app.stores.kube.client import KubeClient
from app.stores.kube.lease import LeaderElector
from tests.support.kmockapi import KubeApi

NS = "k8gb"
FAST = {"lease_duration": 1.0, "renew_deadline": 0.6, "retry_period": 0.1}
ROOT = Path(__file__).resolve().parents[3]


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


def holder(api: KubeApi) -> str | None:
    lease = api.get_object("coordination.k8s.io", "leases", NS, "pygslb")
    return lease["spec"].get("holderIdentity") if lease else None


class Candidate:
    def __init__(self, client: KubeClient, identity: str) -> None:
        self.elector = LeaderElector(client, NS, "pygslb", identity, **FAST)
        self.log: list[str] = []
        self.task = asyncio.create_task(self.elector.run(self._started, lambda: self.log.append("stopped")))

    async def _started(self) -> None:
        self.log.append("started")
        await asyncio.Event().wait()  # the leader's work runs until leadership ends

    @property
    def leading(self) -> bool:
        return self.elector.is_leader

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


@pytest.fixture
async def candidates(kube: KubeClient) -> AsyncIterator[Callable[[str], Candidate]]:
    made: list[Candidate] = []

    def make(identity: str) -> Candidate:
        made.append(Candidate(kube, identity))
        return made[-1]

    yield make
    for candidate in made:
        await candidate.stop()


async def test_one_leader_and_a_handover_on_release(kube_api: KubeApi, candidates: Any) -> None:
    a = candidates("replica-a")
    await until(lambda: a.leading)
    b = candidates("replica-b")
    await until(lambda: b.elector.leader_identity == "replica-a")
    assert not b.leading and holder(kube_api) == "replica-a"

    await a.stop()
    assert a.log == ["started"]  # stopped, not lost: nothing to step down from
    await until(lambda: b.leading and b.log == ["started"])
    assert holder(kube_api) == "replica-b"
    lease = kube_api.get_object("coordination.k8s.io", "leases", NS, "pygslb")
    assert lease is not None and lease["spec"]["leaseTransitions"] >= 1


async def test_simultaneous_candidates_never_both_lead(kube_api: KubeApi, candidates: Any) -> None:
    group = [candidates(f"replica-{i}") for i in range(3)]
    await until(lambda: any(c.leading for c in group))
    for _ in range(30):
        assert sum(c.leading for c in group) <= 1
        await asyncio.sleep(0.02)
    (leader,) = [c for c in group if c.leading]
    assert holder(kube_api) == leader.elector.identity


async def test_a_leader_that_cannot_renew_steps_down(kube_api: KubeApi, candidates: Any) -> None:
    a = candidates("replica-a")
    await until(lambda: a.leading)
    kube_api[kmock.resource("coordination.k8s.io", "v1", "leases")] << 503  # the API is gone for it
    await until(lambda: not a.leading)
    assert a.log == ["started", "stopped"]


CANDIDATE_SCRIPT = """
import asyncio, sys
from app.stores.kube.client import connect
from app.stores.kube.lease import LeaderElector

async def main(kubeconfig, identity):
    client = await connect(kubeconfig)
    elector = LeaderElector(
        client, "k8gb", "pygslb", identity, lease_duration=2.0, renew_deadline=1.5, retry_period=0.2
    )
    await elector.run(lambda: print("LEADING", flush=True), lambda: print("STOPPED", flush=True))

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def spawn(kubeconfig: Path, identity: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CANDIDATE_SCRIPT,
        str(kubeconfig),
        identity,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
    )


async def test_a_crashed_leader_process_is_replaced(kube_api: KubeApi) -> None:
    assert kube_api.kubeconfig is not None
    first = await spawn(kube_api.kubeconfig, "process-1")
    second = None
    try:
        assert first.stdout is not None
        assert await asyncio.wait_for(first.stdout.readline(), 15) == b"LEADING\n"
        second = await spawn(kube_api.kubeconfig, "process-2")
        await until(lambda: holder(kube_api) == "process-1")
        first.send_signal(signal.SIGKILL)  # no release: the lease has to expire
        await first.wait()
        assert second.stdout is not None
        assert await asyncio.wait_for(second.stdout.readline(), 15) == b"LEADING\n"
        assert holder(kube_api) == "process-2"
    finally:
        for proc in (first, second):
            if proc is not None and proc.returncode is None:
                proc.kill()
                await proc.wait()


async def test_gslb_serve_as_leader_stops_quietly_on_sigterm_and_exits_non_zero_when_the_lease_is_lost(
    tmp_path: Path,
) -> None:
    """SIGTERM is a shutdown (exit 0, the Lease released, no "lost" error); a Lease it can no longer
    renew ends the process with an error and a non-zero status, so its supervisor restarts it."""
    from tests.stores.kube.conftest import CRD_DOCUMENTS
    from tests.support.instance import Instance, instance_env
    from tests.support.kmockapi import running_api

    async with running_api(tmp_path) as api:
        api.install_crds(CRD_DOCUMENTS)
        for run in ("sigterm", "lost"):
            (tmp_path / run).mkdir()
            env = instance_env(
                tmp_path,
                run,
                GSLB_MODE="kubernetes",
                GSLB_LEADER_ELECTION="true",
                POD_NAME=f"replica-{run}",
                KUBECONFIG=str(api.kubeconfig),
                POD_NAMESPACE=NS,
                CLUSTER_GEO_TAG="eu",
                DNS_ZONES="example.com:cloud.example.com:30",
            )
            instance = Instance(env, tmp_path / run / "serve.log")
            await instance.start()
            try:
                identity = f"replica-{run}"
                await until(lambda: holder_of(api) == identity, timeout=20)  # noqa: B023 - awaited here
                if run == "sigterm":
                    assert await instance.stop() == 0
                    assert "leader election lost" not in instance.log() and " ERR " not in instance.log()
                    assert holder_of(api) in ("", None)  # released for the next leader
                else:
                    api[kmock.resource("coordination.k8s.io", "v1", "leases")] << 503
                    assert instance.process is not None
                    code = await asyncio.wait_for(instance.process.wait(), 30)
                    assert code == 1, instance.log()
                    assert "error: gslb serve stopped: leader election lost" in instance.log()
            finally:
                await instance.stop()


def holder_of(api: KubeApi) -> str | None:
    lease = api.get_object("coordination.k8s.io", "leases", NS, "pygslb-controller")
    return lease["spec"].get("holderIdentity") if lease else None
