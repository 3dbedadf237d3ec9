"""SIGHUP makes `gslb serve` read its services file again (the usual signal for it): a service added
there is probed and its Gslb answers in DNS, without a restart; a file that does not load is logged and
the running declarations stay. SIGHUP used to end the process."""

import asyncio
import signal
from pathlib import Path

import httpx
import pytest

from tests.support.gslb_factory import gslb_body
from tests.support.instance import a_records, backend_and_services, eventually, running, services_yaml

pytestmark = pytest.mark.e2e
HOST = "shop.cloud.example.com"


async def test_sighup_reloads_the_services_file(tmp_path: Path) -> None:
    async with backend_and_services(tmp_path, "test-gslb/other") as (backend, services):
        async with running(
            tmp_path,
            GSLB_SERVICES_FILE=str(services),
            DNS_ZONES="example.com:cloud.example.com:30",
            CLUSTER_EXPOSED_IPS="10.0.0.1",
        ) as gslb:
            assert gslb.process is not None
            async with httpx.AsyncClient(base_url=gslb.api, timeout=10) as client:
                body = gslb_body("shop", host=HOST, service="shop")
                created = await client.post("/apis/k8gb.io/v1beta1/namespaces/test-gslb/gslbs", json=body)
                assert created.status_code == 201, created.text
            await asyncio.sleep(1)
            assert await a_records(gslb.dns, HOST) is None  # test-gslb/shop is not declared: NotFound

            services.write_text("services: [not closed\n")
            gslb.process.send_signal(signal.SIGHUP)
            await eventually(lambda: _logged(gslb, "services file not reloaded"), True, timeout=5)
            assert gslb.process.returncode is None

            both = {
                "test-gslb/other": [f"127.0.0.1:{backend.port}"],
                "test-gslb/shop": [f"127.0.0.1:{backend.port}"],
            }
            services.write_text(services_yaml(both))
            gslb.process.send_signal(signal.SIGHUP)
            await eventually(lambda: a_records(gslb.dns, HOST), {"10.0.0.1"}, timeout=10)
            assert "services file reloaded: 2 service(s)" in gslb.log()


async def _logged(gslb, text: str) -> bool:  # type: ignore[no-untyped-def]
    return text in gslb.log()
