"""`gslb serve` in kubernetes mode against a real HTTP Kubernetes API: `kubectl apply` a k8gb manifest,
the REST API shows the same object, the DNSEndpoint is written, and the built-in DNS server answers."""

import asyncio
import contextlib
import shutil
from pathlib import Path

import httpx
import pytest

from tests.stores.kube.test_kube_reconcile import get, ready_backend, set_ingress_ip
from tests.support.gslb_factory import gslb_body
from tests.support.instance import ROOT, a_records, eventually, running
from tests.support.kmockapi import kube_mode_settings, load_yaml_documents, running_api

pytestmark = pytest.mark.e2e
HOST = "roundrobin.cloud.example.com"
CRDS = load_yaml_documents(sorted((ROOT / "chart" / "crds").glob("*.yaml")))
KUBECTL = shutil.which("kubectl", path=str(ROOT / ".venv" / "bin")) or shutil.which("kubectl")


async def kubectl(kubeconfig: Path, *args: str) -> str:
    assert KUBECTL, "kubectl not installed"
    proc = await asyncio.create_subprocess_exec(
        KUBECTL,
        "--kubeconfig",
        str(kubeconfig),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_kubectl_apply_is_served_by_rest_api_and_builtin_dns(tmp_path):
    async with running_api(tmp_path) as api:
        api.install_crds(CRDS)
        api.access.add_token("viewer-token", "viewer")  # REST reads are reviewed by the API server
        api.access.allow("viewer", ["get"])
        ready_backend(api, "frontend-podinfo")  # a Service with a ready EndpointSlice, in test-gslb
        async with running(tmp_path, **kube_mode_settings(api)) as gslb:
            await kubectl(
                api.kubeconfig,
                "apply",
                "--validate=false",
                "-f",
                str(ROOT / "examples" / "gslb-roundrobin.yaml"),
            )
            viewer = {"Authorization": "Bearer viewer-token"}
            async with httpx.AsyncClient(base_url=gslb.api, timeout=10, headers=viewer) as client:
                seen = await eventually(
                    lambda: _name(client, "/apis/k8gb.io/v1beta1/namespaces/test-gslb/gslbs/test-gslb"),
                    "test-gslb",
                )
                assert seen == "test-gslb"
            ingress = await eventually(
                lambda: _exists(api, "networking.k8s.io", "ingresses", "test-gslb"), True
            )
            assert ingress
            set_ingress_ip(api, "test-gslb", "192.0.2.10")
            await eventually(lambda: a_records(gslb.dns, HOST), {"192.0.2.10"}, timeout=15)
            dnsendpoint = get(api, "externaldns.k8s.io", "dnsendpoints", "test-gslb")
            assert dnsendpoint is not None
            assert dnsendpoint["metadata"]["labels"]["k8gb.io/dnstype"] == "local"
            await kubectl(api.kubeconfig, "delete", "gslbs.k8gb.io", "test-gslb", "-n", "test-gslb")
            await eventually(lambda: a_records(gslb.dns, HOST), None, timeout=15)


@pytest.mark.parametrize("by", ["rest", "kubectl"])
async def test_an_orphan_delete_keeps_serving_and_the_gslb_applied_again_takes_its_records_over(tmp_path, by):
    """The README's promise: a REST DELETE with `propagationPolicy=Orphan` (or `kubectl delete
    --cascade=orphan`) keeps the Gslb's Ingress and DNSEndpoint, so DNS goes on answering; the Gslb
    applied again adopts the DNSEndpoint, and a plain `kubectl delete` then takes the records away."""
    async with running_api(tmp_path) as api:
        api.install_crds(CRDS)
        api.access.add_token("admin-token", "admin")
        api.access.allow("admin", ["get", "delete"])
        ready_backend(api, "frontend-podinfo")
        async with running(tmp_path, **kube_mode_settings(api)) as gslb:
            manifest = str(ROOT / "examples" / "gslb-roundrobin.yaml")
            await kubectl(api.kubeconfig, "apply", "--validate=false", "-f", manifest)
            await eventually(lambda: _exists(api, "networking.k8s.io", "ingresses", "test-gslb"), True)
            set_ingress_ip(api, "test-gslb", "192.0.2.10")
            await eventually(lambda: a_records(gslb.dns, HOST), {"192.0.2.10"}, timeout=15)

            admin = {"Authorization": "Bearer admin-token"}
            async with httpx.AsyncClient(base_url=gslb.api, timeout=10, headers=admin) as client:
                await eventually(lambda: _has_series(client, 'name="test-gslb"'), True)
                scraped = (await client.get("/metrics")).text  # what a Go controller's /metrics has
                assert "\nprocess_resident_memory_bytes " in scraped
                assert not [line for line in scraped.splitlines() if "_created" in line.split(" ")[0]]
                if by == "rest":
                    url = "/apis/k8gb.io/v1beta1/namespaces/test-gslb/gslbs/test-gslb"
                    deleted = await client.delete(url, params={"propagationPolicy": "Orphan"})
                    assert deleted.status_code == 200, deleted.text
                else:
                    await kubectl(
                        api.kubeconfig,
                        "delete",
                        "--cascade=orphan",
                        "gslbs.k8gb.io",
                        "test-gslb",
                        "-n",
                        "test-gslb",
                    )
                # The controller has handled the delete once the Gslb's metric series are gone.
                await eventually(lambda: _has_series(client, 'name="test-gslb"'), False, timeout=15)
            for _ in range(10):
                assert await a_records(gslb.dns, HOST) == {"192.0.2.10"}
                await asyncio.sleep(0.05)
            assert get(api, "networking.k8s.io", "ingresses", "test-gslb") is not None
            dnsendpoint = get(api, "externaldns.k8s.io", "dnsendpoints", "test-gslb")
            assert dnsendpoint is not None and "ownerReferences" not in dnsendpoint["metadata"]

            await kubectl(api.kubeconfig, "apply", "--validate=false", "-f", manifest)
            again = get(api, "k8gb.io", "gslbs", "test-gslb")
            assert again is not None
            adopted = await eventually(lambda: _controller_uid(api), again["metadata"]["uid"], timeout=15)
            assert adopted == again["metadata"]["uid"]
            assert await a_records(gslb.dns, HOST) == {"192.0.2.10"}

            await kubectl(api.kubeconfig, "delete", "gslbs.k8gb.io", "test-gslb", "-n", "test-gslb")
            await eventually(lambda: a_records(gslb.dns, HOST), None, timeout=15)
            assert get(api, "externaldns.k8s.io", "dnsendpoints", "test-gslb") is None


async def _has_series(client: httpx.AsyncClient, label: str) -> bool:
    return label in (await client.get("/metrics")).text


async def _controller_uid(api):
    obj = get(api, "externaldns.k8s.io", "dnsendpoints", "test-gslb") or {"metadata": {}}
    return next((r["uid"] for r in obj["metadata"].get("ownerReferences", []) if r.get("controller")), None)


async def _name(client: httpx.AsyncClient, url: str):
    response = await client.get(url)
    return response.json()["metadata"]["name"] if response.status_code == 200 else response.status_code


async def _exists(api, group, plural, name):
    return api.get_object(group, plural, "test-gslb", name) is not None


async def test_a_legacy_gslb_migrates_to_its_twin_while_dns_keeps_answering(tmp_path):
    """`kubectl label ... k8gb.io/migration-requested=true` on a served legacy Gslb with an embedded
    ingress: the k8gb.io twin takes over (resourceRef to the Ingress, controller of the DNSEndpoint),
    the built-in DNS server answers the same all along, and `kubectl delete` of the legacy Gslb
    (Background) keeps the twin, the DNSEndpoint and the Ingress."""
    async with running_api(tmp_path) as api:
        api.install_crds(CRDS)
        ready_backend(api, "frontend-podinfo")
        async with running(tmp_path, **kube_mode_settings(api)) as gslb:
            body = gslb_body("mig", group="k8gb.absa.oss", namespace="test-gslb", host=HOST)
            api.create_object("k8gb.absa.oss", "v1beta1", "gslbs", body)
            await eventually(lambda: _exists(api, "networking.k8s.io", "ingresses", "mig"), True)
            set_ingress_ip(api, "mig", "192.0.2.10")
            await eventually(lambda: a_records(gslb.dns, HOST), {"192.0.2.10"}, timeout=15)

            answers: list[set[str] | None] = []

            async def watch_dns() -> None:
                while True:
                    answers.append(await a_records(gslb.dns, HOST))
                    await asyncio.sleep(0.02)

            watcher = asyncio.create_task(watch_dns())
            try:
                gslbs = ("gslbs.k8gb.absa.oss", "mig", "-n", "test-gslb")
                await kubectl(api.kubeconfig, "label", *gslbs, "k8gb.io/migration-requested=true")
                await eventually(lambda: _label(api, "k8gb.io/migrated-to-k8gb-io"), "true", timeout=15)
                twin = get(api, "k8gb.io", "gslbs", "mig")
                assert twin is not None and twin["spec"]["resourceRef"]["kind"] == "Ingress"
                await eventually(lambda: _controller_of(api, "mig"), twin["metadata"]["uid"], timeout=15)
                await kubectl(api.kubeconfig, "delete", *gslbs, "--wait=false")  # (kubectl's wait watches
                # with sendInitialEvents, which the emulator does not serve)
                await eventually(lambda: _exists(api, "k8gb.absa.oss", "gslbs", "mig"), False, timeout=15)
                for _ in range(10):
                    await asyncio.sleep(0.05)
            finally:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            assert answers and all(a == {"192.0.2.10"} for a in answers), answers
            assert get(api, "k8gb.io", "gslbs", "mig") is not None
            assert get(api, "networking.k8s.io", "ingresses", "mig") is not None
            assert await _controller_of(api, "mig") == twin["metadata"]["uid"]
            assert await a_records(gslb.dns, HOST) == {"192.0.2.10"}


async def _label(api, key):
    obj = get(api, "k8gb.absa.oss", "gslbs", "mig") or {"metadata": {}}
    return (obj["metadata"].get("labels") or {}).get(key)


async def _controller_of(api, name):
    obj = get(api, "externaldns.k8s.io", "dnsendpoints", name) or {"metadata": {}}
    return next((r["uid"] for r in obj["metadata"].get("ownerReferences", []) if r.get("controller")), None)
