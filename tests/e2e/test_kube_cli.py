"""The `gslb` CLI against `gslb serve` in kubernetes mode, beside kubectl: `gslb apply` and `kubectl apply`
share one last-applied history and keep what `kubectl label`/`annotate` set; `gslb get` shows the group a
user's RBAC lets them read when the other is forbidden."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.test_kube_serve import CRDS, kubectl
from tests.support.gslb_factory import gslb_body
from tests.support.instance import ROOT, running
from tests.support.kmockapi import kube_mode_settings, running_api
from tests.test_cli_apply import gslb_cli

pytestmark = pytest.mark.e2e
NS = "test-gslb"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


async def test_gslb_apply_and_kubectl_apply_share_one_history(tmp_path: Path) -> None:
    token = "dev-token-3f9a"
    original = (ROOT / "examples" / "gslb-roundrobin.yaml").read_text()
    manifest = tmp_path / "gslb.yaml"
    async with running_api(tmp_path) as api:
        api.install_crds(CRDS)
        api.access.add_token(token, "dev")
        api.access.allow("dev", ["get", "list", "create", "patch", "update"], namespace=NS)
        async with running(tmp_path, **kube_mode_settings(api)) as gslb:

            async def gslb_apply() -> str:
                code, out, err = await gslb_cli(
                    "apply", "-f", str(manifest), "--server", gslb.api, GSLB_API_TOKEN=token
                )
                assert code == 0, err
                return out

            manifest.write_text(original)
            await kubectl(api.kubeconfig, "apply", "--validate=false", "-f", str(manifest))
            by_kubectl = api.get_object("k8gb.io", "gslbs", NS, "test-gslb")
            assert by_kubectl is not None
            # What kubectl applied, applied again: gslb reads kubectl's record as its own.
            assert await gslb_apply() == "gslb.k8gb.io/test-gslb unchanged\n"

            await kubectl(api.kubeconfig, "label", "gslbs.k8gb.io", "test-gslb", "-n", NS, "tier=web")
            await kubectl(api.kubeconfig, "annotate", "gslbs.k8gb.io", "test-gslb", "-n", NS, "team=blue")
            manifest.write_text(original.replace("dnsTtlSeconds: 30", "dnsTtlSeconds: 60"))
            assert await gslb_apply() == "gslb.k8gb.io/test-gslb configured\n"
            stored = api.get_object("k8gb.io", "gslbs", NS, "test-gslb")
            assert stored is not None
            assert stored["spec"]["strategy"]["dnsTtlSeconds"] == 60
            assert stored["metadata"]["labels"] == {"tier": "web"}
            annotations = stored["metadata"]["annotations"]
            assert annotations["team"] == "blue"
            recorded = json.loads(annotations[LAST_APPLIED])
            assert recorded["spec"]["strategy"]["dnsTtlSeconds"] == 60
            assert recorded == {
                **json.loads(by_kubectl["metadata"]["annotations"][LAST_APPLIED]),
                "spec": recorded["spec"],
            }

            # And kubectl reads gslb's record as its own: the same manifest is nothing to do.
            out = await kubectl(api.kubeconfig, "apply", "--validate=false", "-f", str(manifest))
            assert out == "gslb.k8gb.io/test-gslb unchanged\n"


async def test_gslb_get_shows_the_group_a_user_may_read(tmp_path: Path) -> None:
    reader, nobody = "reader-token-8d21", "nobody-token-c4e7"
    async with running_api(tmp_path) as api:
        api.install_crds(CRDS)
        api.create_object("k8gb.io", "v1beta1", "gslbs", gslb_body("app", namespace=NS))
        api.create_object(
            "k8gb.absa.oss", "v1beta1", "gslbs", gslb_body("legacy", group="k8gb.absa.oss", namespace=NS)
        )
        api.access.add_token(reader, "reader")
        api.access.allow("reader", ["get", "list"], group="k8gb.io", namespace=NS)
        api.access.add_token(nobody, "nobody")
        async with running(tmp_path, **kube_mode_settings(api)) as gslb:

            async def get(*args: str, token: str = reader) -> tuple[int, str, str]:
                return await gslb_cli("get", "-n", NS, *args, "--server", gslb.api, GSLB_API_TOKEN=token)

            skipped = (
                "Warning: skipped gslbs.k8gb.absa.oss (Forbidden): gslbs.k8gb.absa.oss{name} is forbidden: "
                'User "reader" cannot {verb} resource "gslbs" in API group "k8gb.absa.oss" in the namespace '
                f'"{NS}"\n'
            )
            code, out, err = await get()
            assert (code, err) == (0, skipped.format(name="", verb="list")), err
            assert [line.split()[:2] for line in out.splitlines()] == [["NAMESPACE", "NAME"], [NS, "app"]]

            code, out, err = await get("app", "-o", "json")
            assert (code, err) == (0, skipped.format(name=' "app"', verb="get")), err
            assert json.loads(out)["metadata"]["name"] == "app"

            code, out, err = await get("legacy", "-o", "yaml")
            assert (code, out) == (1, ""), err
            assert err == skipped.format(name=' "legacy"', verb="get") + (
                'Error from server (NotFound): gslbs.k8gb.io "legacy" not found\n'
            )

            # Only the group asked for, or no group answering, is an error.
            code, out, err = await get("--group", "k8gb.absa.oss")
            assert (code, out) == (1, ""), err
            assert err.startswith("Error from server (Forbidden): gslbs.k8gb.absa.oss is forbidden"), err
            code, out, err = await get(token=nobody)
            assert (code, out) == (1, ""), err
            assert [line.split(":")[1].strip() for line in err.splitlines()] == [
                "gslbs.k8gb.io is forbidden",
                "gslbs.k8gb.absa.oss is forbidden",
            ], err
