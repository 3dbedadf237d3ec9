"""Two Gslbs claiming one host, as while migrating from the legacy API group: DNS serves both, and
deleting one leaves the other's records in place (as k8gb's CoreDNS with two DNSEndpoints)."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from app.domain.gslb import EXPOSED_IPS_ANNOTATION
from tests.support.gslb_factory import gslb_body
from tests.support.instance import Instance, a_records, backend_and_services, eventually, running

pytestmark = pytest.mark.e2e
HOST = "shared.cloud.example.com"


@contextlib.asynccontextmanager
async def serving(tmp_path: Path) -> AsyncIterator[tuple[Instance, httpx.AsyncClient]]:
    """Embedded mode with a healthy backend, this cluster's IP 10.0.0.1, a resync every second."""
    async with backend_and_services(tmp_path, "test-gslb/frontend-podinfo") as (_, services):
        async with running(
            tmp_path,
            GSLB_SERVICES_FILE=str(services),
            DNS_ZONES="example.com:cloud.example.com:30",
            CLUSTER_EXPOSED_IPS="10.0.0.1",
            RECONCILE_REQUEUE_SECONDS="1",
        ) as gslb:
            async with httpx.AsyncClient(base_url=gslb.api, timeout=10) as client:
                yield gslb, client


def collection(group: str) -> str:
    return f"/apis/{group}/v1beta1/namespaces/test-gslb/gslbs"


async def test_deleting_one_of_two_gslbs_with_one_host_keeps_the_others_records(tmp_path: Path):
    async with serving(tmp_path) as (gslb, client):
        legacy = gslb_body("app", group="k8gb.absa.oss", host=HOST)
        current = gslb_body("app", group="k8gb.io", host=HOST)
        current["metadata"]["annotations"] = {EXPOSED_IPS_ANNOTATION: "10.0.0.2"}
        for group, body in (("k8gb.absa.oss", legacy), ("k8gb.io", current)):
            created = await client.post(collection(group), json=body)
            assert created.status_code == 201, created.text
        await eventually(lambda: a_records(gslb.dns, HOST), {"10.0.0.1", "10.0.0.2"}, timeout=5)

        deleted = await client.delete(f"{collection('k8gb.absa.oss')}/app")
        assert deleted.status_code == 200, deleted.text
        await eventually(lambda: a_records(gslb.dns, HOST), {"10.0.0.2"}, timeout=5)
        await eventually(lambda: a_records(gslb.dns, f"localtargets-{HOST}"), {"10.0.0.2"}, timeout=5)
        await asyncio.sleep(2.5)  # resyncs of the survivor come and go: the records stay
        assert await a_records(gslb.dns, HOST) == {"10.0.0.2"}
        assert await a_records(gslb.dns, f"localtargets-{HOST}") == {"10.0.0.2"}


async def test_embedded_mode_migrates_a_legacy_gslb_labelled_for_it(tmp_path: Path):
    """The legacy runtime leaves a Gslb labelled `k8gb.io/migration-requested` alone, in embedded mode
    too: the migration creates its k8gb.io twin (spec.ingress kept: embedded mode has no Ingress object)
    and labels it migrated; DNS answers the same all along, from the twin."""
    async with serving(tmp_path) as (gslb, client):
        created = await client.post(
            collection("k8gb.absa.oss"), json=gslb_body("app", group="k8gb.absa.oss", host=HOST)
        )
        assert created.status_code == 201, created.text
        await eventually(lambda: a_records(gslb.dns, HOST), {"10.0.0.1"}, timeout=5)
        answers: list[set[str] | None] = []

        async def watch_dns() -> None:
            while True:
                answers.append(await a_records(gslb.dns, HOST))
                await asyncio.sleep(0.01)

        watcher = asyncio.create_task(watch_dns())
        try:
            patched = await client.patch(
                f"{collection('k8gb.absa.oss')}/app",
                json={"metadata": {"labels": {"k8gb.io/migration-requested": "true"}}},
                headers={"Content-Type": "application/merge-patch+json"},
            )
            assert patched.status_code == 200, patched.text

            async def migrated() -> str | None:
                legacy = (await client.get(f"{collection('k8gb.absa.oss')}/app")).json()
                return legacy["metadata"].get("labels", {}).get("k8gb.io/migrated-to-k8gb-io")

            await eventually(migrated, "true", timeout=5)
            twin = (await client.get(f"{collection('k8gb.io')}/app")).json()
            assert twin["spec"]["ingress"]["rules"][0]["host"] == HOST
            await eventually(lambda: _status_hosts(client, collection("k8gb.io") + "/app"), HOST, timeout=5)
            legacy = (await client.get(f"{collection('k8gb.absa.oss')}/app")).json()
            await asyncio.sleep(2.5)  # resyncs come and go: the legacy Gslb is not written again
            again = (await client.get(f"{collection('k8gb.absa.oss')}/app")).json()
            assert again["metadata"]["resourceVersion"] == legacy["metadata"]["resourceVersion"]
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        assert answers and all(a == {"10.0.0.1"} for a in answers), answers
        assert await a_records(gslb.dns, HOST) == {"10.0.0.1"}


async def _status_hosts(client: httpx.AsyncClient, url: str) -> str | None:
    return ((await client.get(url)).json().get("status") or {}).get("hosts")
