"""`gslb serve` in kubernetes mode, set up as the chart sets it up (DNS_SERVICE_NAME, DNS on an unspecified
address in the pod), delegates the edge zone to its DNS Service's load balancer address: it waits, saying so
in the Gslb's status, until the Service has one, then publishes it at a real BIND9 edge by RFC2136, and
follows it when it changes (the next periodic round is 300 s away: only the Service's watch can do it)."""

from pathlib import Path
from typing import Any

import pytest

from tests.stores.kube.test_kube_reconcile import ready_backend
from tests.support.bind9 import Bind9, generate_key, require_named, zone_text
from tests.support.gslb_factory import gslb_body
from tests.support.instance import ROOT, a_records, eventually, running
from tests.support.kmockapi import KubeApi, kube_mode_settings, load_yaml_documents, running_api

pytestmark = pytest.mark.e2e
CRDS = load_yaml_documents(sorted((ROOT / "chart" / "crds").glob("*.yaml")))
SERVICE = "gslb-pygslb-dns"
GLUE = "gslb-ns-eu-cloud.example.com"


def edge_condition(api: KubeApi) -> dict[str, Any] | None:
    gslb = api.get_object("k8gb.io", "gslbs", "test-gslb", "app") or {}
    conditions = (gslb.get("status") or {}).get("conditions") or []
    found = [c for c in conditions if c["type"] == "EdgeDelegated"]
    return {k: found[0][k] for k in ("status", "reason", "message")} if found else None


def balance(api: KubeApi, ip: str) -> None:
    api.set_status("", "services", "k8gb", SERVICE, {"loadBalancer": {"ingress": [{"ip": ip}]}})


async def test_the_glue_is_the_dns_services_address_once_it_has_one_and_follows_it(tmp_path: Path) -> None:
    require_named()
    key = await generate_key("pygslb-e2e")
    secret = tmp_path / "tsig.secret"
    secret.write_text(key.secret + "\n")
    async with (
        Bind9({"example.com": zone_text("example.com")}, key=key) as edge,
        running_api(tmp_path) as api,
    ):
        api.install_crds(CRDS)
        api.create_object(
            "",
            "v1",
            "services",
            {"metadata": {"name": SERVICE, "namespace": "k8gb"}, "spec": {"type": "LoadBalancer"}},
        )
        ready_backend(api, "frontend")
        api.create_object("k8gb.io", "v1beta1", "gslbs", gslb_body("app", service="frontend"))
        settings = kube_mode_settings(
            api,
            DNS_SERVICE_NAME=SERVICE,
            EDGE_DNS_TYPE="rfc2136",
            EDGE_DNS_SERVERS=f"127.0.0.1:{edge.port}",
            RFC2136_HOST=f"127.0.0.1:{edge.port}",
            RFC2136_TSIG_KEYNAME=key.name,
            RFC2136_TSIG_SECRET_FILE=str(secret),
        )
        async with running(tmp_path, **settings) as gslb:
            waiting = {
                "status": "False",
                "reason": "WaitingForDNSAddress",
                "message": "waiting for this cluster's DNS address: Service k8gb/gslb-pygslb-dns has no load "
                "balancer address yet",
            }
            await eventually(_async(lambda: edge_condition(api)), waiting, timeout=15)
            assert waiting["message"] in gslb.log()
            assert await a_records((edge.host, edge.port), GLUE) is None  # DNS_ADDRESS's 127.0.0.1 is no glue

            balance(api, "192.0.2.53")
            await eventually(lambda: a_records((edge.host, edge.port), GLUE), {"192.0.2.53"}, timeout=15)
            delegated = {"status": "True", "reason": "Delegated", "message": "delegated through rfc2136"}
            await eventually(_async(lambda: edge_condition(api)), delegated, timeout=15)

            balance(api, "192.0.2.54")
            await eventually(lambda: a_records((edge.host, edge.port), GLUE), {"192.0.2.54"}, timeout=15)


def _async(check: Any) -> Any:
    async def call() -> Any:
        return check()

    return call
