"""A follower answers DNS too: `gslb serve` in kubernetes mode that does not hold the Lease (so never
reconciles) serves a DNSEndpoint created by hand, as k8gb's CoreDNS would, and stops when it is deleted;
and it says it is ready, so a Service keeps sending it API and DNS traffic."""

from __future__ import annotations

from datetime import UTC, datetime

import dns.rcode
import httpx
import pytest

from tests.stores.kube.conftest import CRD_DOCUMENTS
from tests.stores.kube.test_kube_zonefeed import WEIGHTED, create, k8gb_dnsendpoint
from tests.support.instance import a_records, eventually, query, running
from tests.support.kmockapi import running_api

pytestmark = pytest.mark.e2e
LEADER = "someone-else"


async def test_a_follower_serves_dnsendpoints_it_did_not_write(tmp_path) -> None:
    async with running_api(tmp_path) as api:
        api.install_crds(CRD_DOCUMENTS)
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        api.create_object(  # another replica leads, for the whole test
            "coordination.k8s.io",
            "v1",
            "leases",
            {
                "metadata": {"name": "pygslb-controller", "namespace": "k8gb"},
                "spec": {"holderIdentity": LEADER, "leaseDurationSeconds": 3600, "renewTime": now},
            },
        )
        async with running(
            tmp_path,
            GSLB_MODE="kubernetes",
            GSLB_LEADER_ELECTION="true",
            KUBECONFIG=str(api.kubeconfig),
            POD_NAMESPACE="k8gb",
            CLUSTER_GEO_TAG="eu",
            DNS_ZONES="example.com:cloud.example.com:30",
        ) as follower:
            async with httpx.AsyncClient(base_url=follower.api, timeout=10) as client:
                ready = await client.get("/readyz")
                assert (ready.status_code, ready.text) == (200, "ok")
            assert await a_records(follower.dns, WEIGHTED) is None
            create(api, k8gb_dnsendpoint())
            await eventually(
                lambda: a_records(follower.dns, WEIGHTED), {"10.0.0.1", "10.0.0.2", "172.16.0.1"}
            )

            api.delete_object("externaldns.k8s.io", "dnsendpoints", "test-gslb", "weighted")
            await eventually(lambda: a_records(follower.dns, WEIGHTED), None)
            assert (await query(follower.dns, WEIGHTED)).rcode() == dns.rcode.NXDOMAIN

            lease = api.get_object("coordination.k8s.io", "leases", "k8gb", "pygslb-controller")
            assert lease is not None and lease["spec"]["holderIdentity"] == LEADER  # it stayed a follower
