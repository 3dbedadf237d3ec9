"""k8gb's legacy-group migration in kubernetes mode, with a running controller on the emulated API server:
the legacy runtime leaves a Gslb labelled for migration alone, and the migrator does what k8gb's
`legacy-gslb-migrator` does (chainsaw tests legacy-migration-*, TestLegacyMigration*)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import kmock
import pytest

from app.stores.base import ObjectKey
from tests.stores.kube.test_kube_reconcile import NS, get, ready_backend, records, set_ingress_ip, until
from tests.support.gslb_factory import gslb_body
from tests.support.kmockapi import KubeApi

HOST = "mig.cloud.example.com"
LEGACY = "k8gb.absa.oss"
REQUESTED = "k8gb.io/migration-requested"
MIGRATED = "k8gb.io/migrated-to-k8gb-io"
FINALIZER = "k8gb.io/legacy-migration-protection"
SERVED = {f"localtargets-{HOST}": ["192.0.2.10"], HOST: ["192.0.2.10"]}


def events_on(api: KubeApi, group: str) -> list[dict[str, Any]]:
    return [
        e
        for e in api.objects("", "events", NS)
        if e["involvedObject"]["name"] == "mig" and e["involvedObject"]["apiVersion"].startswith(group)
    ]


def controllers(api: KubeApi, group: str, plural: str) -> list[str]:
    obj = get(api, group, plural, "mig") or {"metadata": {}}
    return [r["apiVersion"] for r in obj["metadata"].get("ownerReferences") or [] if r.get("controller")]


def owner_uids(api: KubeApi, group: str, plural: str) -> list[str]:
    obj = get(api, group, plural, "mig") or {"metadata": {}}
    return [r["uid"] for r in obj["metadata"].get("ownerReferences") or []]


def uid(api: KubeApi, group: str) -> str:
    obj = get(api, group, "gslbs", "mig")
    assert obj is not None
    return str(obj["metadata"]["uid"])


def label(api: KubeApi, **labels: str) -> None:
    legacy = get(api, LEGACY, "gslbs", "mig")
    assert legacy is not None
    legacy["metadata"]["labels"] = {**(legacy["metadata"].get("labels") or {}), **labels}
    api.update_object(LEGACY, "gslbs", legacy)


async def served_legacy(api: KubeApi) -> None:
    """Legacy Gslb `mig` with an embedded ingress, served from 192.0.2.10 by the legacy runtime."""
    ready_backend(api, "frontend")
    body = gslb_body("mig", group=LEGACY, namespace=NS, host=HOST, service="frontend")
    body["metadata"]["annotations"] = {"k8gb.io/exposed-ip-addresses": "192.0.2.10", "team": "web"}
    api.create_object(LEGACY, "v1beta1", "gslbs", body)
    await until(lambda: get(api, "networking.k8s.io", "ingresses", "mig"))
    set_ingress_ip(api, "mig", "192.0.2.10")
    assert await until(lambda: records(api, "mig")) == SERVED
    assert controllers(api, "externaldns.k8s.io", "dnsendpoints") == ["k8gb.absa.oss/v1beta1"]


def errors_series(replica: Any) -> list[Any]:
    return [
        s
        for m in replica.controller.metrics.registry.collect()
        if m.name == "k8gb_gslb_errors"
        for s in m.samples
        if s.labels.get("name") == "mig" and s.value
    ]


async def test_a_legacy_gslb_k8gb_already_migrated_is_left_alone(kube_api: KubeApi, replica: Any) -> None:
    """What k8gb leaves after a migration: the twin (resourceRef to the Ingress) controls the DNSEndpoint,
    the legacy Gslb is labelled migrated and holds the finalizer. The legacy runtime reconciled it again
    and failed on every round ('DNSEndpoint ... is controlled by Gslb mig of k8gb.io/v1beta1'), writing
    Ready=False and ReconcileError events; now it writes nothing to it, and only k8gb's LegacyIgnored
    event says it is ignored."""
    ready_backend(kube_api, "frontend")
    rules = [
        {
            "host": HOST,
            "http": {
                "paths": [{"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "frontend"}}}]
            },
        }
    ]
    kube_api.create_object(
        "networking.k8s.io",
        "v1",
        "ingresses",
        {"metadata": {"name": "mig", "namespace": NS}, "spec": {"rules": rules}},
    )
    set_ingress_ip(kube_api, "mig", "192.0.2.10")
    twin = gslb_body("mig", namespace=NS)
    del twin["spec"]["ingress"]
    twin["spec"]["resourceRef"] = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "mig"}
    kube_api.create_object("k8gb.io", "v1beta1", "gslbs", twin)
    assert await until(lambda: records(kube_api, "mig")) == SERVED
    legacy = gslb_body("mig", group=LEGACY, namespace=NS, host=HOST, service="frontend")
    legacy["metadata"] |= {"labels": {REQUESTED: "true", MIGRATED: "true"}, "finalizers": [FINALIZER]}
    created = kube_api.create_object(LEGACY, "v1beta1", "gslbs", legacy)

    ignored = await until(lambda: events_on(kube_api, LEGACY))
    for _ in range(5):  # failures retried with the backoff: give them the time to show
        await asyncio.sleep(0.2)
        await replica.controller.wait_idle()
    assert [(e["type"], e["reason"], e["source"]["component"]) for e in events_on(kube_api, LEGACY)] == [
        ("Warning", "LegacyIgnored", "legacy-gslb-migrator")
    ]
    assert ignored[0]["message"] == f"Legacy Gslb ignored. Edit k8gb.io Gslb {NS}/mig instead."
    now = get(kube_api, LEGACY, "gslbs", "mig")
    assert now is not None and "status" not in now
    assert now["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]  # no write at all
    assert records(kube_api, "mig") == SERVED
    assert controllers(kube_api, "externaldns.k8s.io", "dnsendpoints") == ["k8gb.io/v1beta1"]
    assert [e["reason"] for e in events_on(kube_api, "k8gb.io/")] == []  # the twin serves, untroubled
    assert errors_series(replica) == []


async def test_migration_requested_moves_an_embedded_legacy_gslb_to_its_twin(
    kube_api: KubeApi, replica: Any
) -> None:
    await served_legacy(kube_api)
    legacy_uid = uid(kube_api, LEGACY)
    assert owner_uids(kube_api, "networking.k8s.io", "ingresses") == [legacy_uid]

    label(kube_api, **{REQUESTED: "true"})

    migrated = await until(
        lambda: (g := get(kube_api, LEGACY, "gslbs", "mig")) and g["metadata"]["labels"].get(MIGRATED) and g
    )
    assert migrated["metadata"]["finalizers"] == [FINALIZER]
    twin = get(kube_api, "k8gb.io", "gslbs", "mig")
    assert twin is not None
    assert "ingress" not in twin["spec"]
    assert twin["spec"]["resourceRef"] == {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "name": "mig",
        "namespace": NS,
    }
    assert twin["spec"]["strategy"] == {"type": "roundRobin", "dnsTtlSeconds": 30}
    assert twin["metadata"]["annotations"] == {"k8gb.io/exposed-ip-addresses": "192.0.2.10", "team": "web"}
    assert "labels" not in twin["metadata"]
    assert owner_uids(kube_api, "networking.k8s.io", "ingresses") == []  # referenced now, owned by nobody
    await until(
        lambda: owner_uids(kube_api, "externaldns.k8s.io", "dnsendpoints") == [twin["metadata"]["uid"]]
    )
    assert controllers(kube_api, "externaldns.k8s.io", "dnsendpoints") == ["k8gb.io/v1beta1"]
    await until(
        lambda: (get(kube_api, "k8gb.io", "gslbs", "mig") or {}).get("status", {}).get("healthyRecords")
    )
    assert records(kube_api, "mig") == SERVED
    reasons = await until(lambda: [(e["type"], e["reason"]) for e in events_on(kube_api, LEGACY)][:2])
    assert reasons[0] == ("Warning", "LegacyDeprecated")  # before the label: k8gb warns every legacy Gslb
    assert ("Normal", "LegacyMigrated") in [(e["type"], e["reason"]) for e in events_on(kube_api, LEGACY)]
    assert "ReconcileError" not in [e["reason"] for e in kube_api.objects("", "events", NS)]

    kube_api.delete_object(LEGACY, "gslbs", NS, "mig")  # Background, as kubectl deletes
    await until(lambda: get(kube_api, LEGACY, "gslbs", "mig") is None)  # the finalizer was released
    await replica.controller.wait_idle()
    assert get(kube_api, "k8gb.io", "gslbs", "mig") is not None
    assert get(kube_api, "networking.k8s.io", "ingresses", "mig") is not None
    assert controllers(kube_api, "externaldns.k8s.io", "dnsendpoints") == ["k8gb.io/v1beta1"]
    assert records(kube_api, "mig") == SERVED


async def test_a_migration_cut_short_is_finished_by_the_next_controller(
    kube_api: KubeApi, replica_factory: Callable[[], Awaitable[Any]], caplog: pytest.LogCaptureFixture
) -> None:
    first = await replica_factory()
    await first.start()
    try:
        await served_legacy(kube_api)
        broken = {"on": True}  # the twin cannot be created: the migration stops half-way, then the controller
        (
            kube_api[kmock.method.POST, kmock.resource("k8gb.io", "v1beta1", "gslbs"), lambda: broken["on"]]
            << 503
        )
        label(kube_api, **{REQUESTED: "true"})
        await until(lambda: owner_uids(kube_api, "externaldns.k8s.io", "dnsendpoints") == [])
        await until(
            lambda: [r for r in kube_api if r.method == kmock.method.POST and "k8gb.io/" in r.url.path]
        )
    finally:
        await first.stop()
    # the operator reads which step is stuck, and why
    assert "legacy migration: creating the k8gb.io twin: Unavailable" in caplog.text, caplog.text[-2000:]
    assert get(kube_api, "k8gb.io", "gslbs", "mig") is None
    legacy = get(kube_api, LEGACY, "gslbs", "mig")
    assert legacy is not None and MIGRATED not in legacy["metadata"]["labels"]
    assert legacy["metadata"]["finalizers"] == [FINALIZER]
    assert records(kube_api, "mig") == SERVED  # the DNSEndpoint stays, ownerless for now
    broken["on"] = False

    second = await replica_factory()
    await second.start()
    try:
        await until(lambda: (get(kube_api, LEGACY, "gslbs", "mig") or {})["metadata"]["labels"].get(MIGRATED))
        migrated = await until(
            lambda: [e for e in events_on(kube_api, LEGACY) if e["reason"] == "LegacyMigrated"]
        )
        assert migrated[0]["type"] == "Normal"
        twin_uid = uid(kube_api, "k8gb.io")
        await until(lambda: owner_uids(kube_api, "externaldns.k8s.io", "dnsendpoints") == [twin_uid])
        assert owner_uids(kube_api, "networking.k8s.io", "ingresses") == []
        assert records(kube_api, "mig") == SERVED
        await second.controller.wait_idle()
        assert ObjectKey(LEGACY, NS, "mig") in second.reconciled
    finally:
        await second.stop()
