"""The README walkthrough as a user runs it: `gslb serve`, POST a k8gb manifest, `dig` the answer,
watch health move the records, delete, and survive SIGKILL right after a 201."""

import asyncio
import shutil
from pathlib import Path

import httpx
import pytest

from tests.support.instance import Backend, a_records, eventually, running, services_yaml

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = (ROOT / "examples" / "gslb-roundrobin.yaml").read_text()
COLLECTION = "/apis/k8gb.io/v1beta1/namespaces/test-gslb/gslbs"
HOST = "roundrobin.cloud.example.com"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture
async def backend():
    server = await Backend().start()
    yield server
    await server.stop()


def settings_for(tmp_path: Path, backend: Backend) -> dict[str, str]:
    services = tmp_path / "services.yaml"
    services.write_text(services_yaml({"test-gslb/frontend-podinfo": [f"127.0.0.1:{backend.port}"]}))
    return {
        "GSLB_SERVICES_FILE": str(services),
        "CLUSTER_GEO_TAG": "eu",
        "DNS_ZONES": "example.com:cloud.example.com:30",
        "CLUSTER_EXPOSED_IPS": "10.0.0.1,10.0.0.2",
    }


async def test_walkthrough(tmp_path, backend):
    async with running(tmp_path, **settings_for(tmp_path, backend)) as gslb:
        async with httpx.AsyncClient(base_url=gslb.api, timeout=10) as client:
            created = await client.post(
                COLLECTION,
                content=EXAMPLE,
                headers={"Content-Type": "application/yaml", "traceparent": TRACEPARENT},
            )
            assert created.status_code == 201, created.text
            assert created.json()["spec"]["strategy"]["dnsTtlSeconds"] == 30

        # The record appears without waiting for a resync.
        await eventually(lambda: a_records(gslb.dns, HOST), {"10.0.0.1", "10.0.0.2"}, timeout=5)
        await eventually(
            lambda: a_records(gslb.dns, f"localtargets-{HOST}"), {"10.0.0.1", "10.0.0.2"}, timeout=5
        )
        if shutil.which("dig"):
            proc = await asyncio.create_subprocess_exec(
                "dig",
                "@127.0.0.1",
                "-p",
                str(gslb.dns[1]),
                HOST,
                "A",
                "+short",
                stdout=asyncio.subprocess.PIPE,
            )
            out, _ = await proc.communicate()
            assert set(out.decode().split()) == {"10.0.0.1", "10.0.0.2"}

        # The backend goes down: NXDOMAIN; it comes back: the records return.
        await backend.stop()
        await eventually(lambda: a_records(gslb.dns, HOST), None, timeout=5)
        await backend.restart()
        await eventually(lambda: a_records(gslb.dns, HOST), {"10.0.0.1", "10.0.0.2"}, timeout=5)

        # Status tells the story, and `gslb get -o wide` shows it.
        async with httpx.AsyncClient(base_url=gslb.api, timeout=10) as client:
            status = (await client.get(f"{COLLECTION}/test-gslb")).json()["status"]
            assert status["serviceHealth"] == {HOST: "Healthy"}
            assert sorted(status["healthyRecords"][HOST]) == ["10.0.0.1", "10.0.0.2"]
            assert status["geoTag"] == "eu"
            assert status["hosts"] == HOST
            assert status["observedGeneration"] == 1
        proc = await asyncio.create_subprocess_exec(
            str(ROOT / ".venv" / "bin" / "gslb") if (ROOT / ".venv/bin/gslb").exists() else "gslb",
            "get",
            "-n",
            "test-gslb",
            "-o",
            "wide",
            "--server",
            gslb.api,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        assert "test-gslb" in out.decode() and "roundRobin" in out.decode() and "Healthy" in out.decode()

        # Deleting the Gslb removes its records.
        async with httpx.AsyncClient(base_url=gslb.api, timeout=10) as client:
            assert (await client.delete(f"{COLLECTION}/test-gslb")).status_code == 200
        await eventually(lambda: a_records(gslb.dns, HOST), None, timeout=5)
        await eventually(lambda: a_records(gslb.dns, f"localtargets-{HOST}"), None, timeout=5)


async def test_sigkill_after_201_loses_nothing(tmp_path, backend):
    settings = settings_for(tmp_path, backend)
    async with running(tmp_path, "a", **settings) as gslb:
        async with httpx.AsyncClient(base_url=gslb.api, timeout=10) as client:
            created = await client.post(
                COLLECTION, content=EXAMPLE, headers={"Content-Type": "application/yaml"}
            )
            assert created.status_code == 201
        await gslb.kill()  # no chance to flush anything after the 201
        env = gslb.env
    # Same data dir, fresh ports are not needed: the old process is gone.
    async with running(
        tmp_path, "a", **{**settings, **{k: env[k] for k in ("API_ADDRESS", "DNS_ADDRESS", "GSLB_DATA_DIR")}}
    ) as again:
        async with httpx.AsyncClient(base_url=again.api, timeout=10) as client:
            got = await client.get(f"{COLLECTION}/test-gslb")
            assert got.status_code == 200
            assert got.json()["metadata"]["uid"] == created.json()["metadata"]["uid"]
        # ...and it is reconciled again after the restart: DNS answers.
        await eventually(lambda: a_records(again.dns, HOST), {"10.0.0.1", "10.0.0.2"}, timeout=5)
