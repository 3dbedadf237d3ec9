"""The Ingress annotation workflow (k8gb.md §2), driven by the Ingress watch as in a cluster."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from app.domain.gslb import Gslb
from app.stores.base import NotFound, ObjectKey
from app.stores.kube.client import KubeClient
from app.stores.kube.events import KubeEvents
from app.stores.kube.ingress_workflow import IngressWorkflow
from app.stores.kube.store import KubeGslbStore
from app.stores.kube.triggers import GslbTriggers
from tests.support.gslb_factory import gslb_body
from tests.support.kmockapi import KubeApi

NS = "test-gslb"
KEY = ObjectKey("k8gb.io", NS, "web")


def annotated(annotations: dict[str, str], name: str = "web", **meta: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": NS, "annotations": annotations, **meta},
        "spec": {"rules": [{"host": "web.cloud.example.com", "http": {"paths": []}}]},
    }


@pytest.fixture
async def triggers(kube: KubeClient, kube_store: KubeGslbStore) -> AsyncIterator[GslbTriggers]:
    workflow = IngressWorkflow(kube, store=kube_store, events=KubeEvents(kube))
    feed = GslbTriggers(kube, store=kube_store, on_key=lambda key, reason: None, workflow=workflow)
    await feed.start()
    try:
        yield feed
    finally:
        await feed.stop()


async def eventually(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    async with asyncio.timeout(timeout):
        while True:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return result
            await asyncio.sleep(0.02)


async def gslb_or_none(store: KubeGslbStore) -> Gslb | None:
    try:
        return await store.get(KEY)
    except NotFound:
        return None


async def test_an_annotated_ingress_gets_its_gslb(
    kube_api: KubeApi, kube_store: KubeGslbStore, triggers: GslbTriggers
) -> None:
    ingress = kube_api.create_object(
        "networking.k8s.io",
        "v1",
        "ingresses",
        annotated({"k8gb.io/strategy": "roundRobin", "k8gb.io/exposed-ip-addresses": "10.0.0.9"}),
    )
    gslb = await eventually(lambda: gslb_or_none(kube_store))
    assert gslb.spec.resource_ref is not None
    assert gslb.spec.resource_ref.model_dump(exclude_none=True) == {
        "api_version": "networking.k8s.io/v1",
        "kind": "Ingress",
        "name": "web",
    }
    assert (gslb.spec.strategy.type, gslb.spec.strategy.dns_ttl_seconds) == ("roundRobin", 30)
    assert gslb.spec.ingress is None
    assert gslb.metadata.annotations == {"k8gb.io/exposed-ip-addresses": "10.0.0.9"}
    (owner,) = gslb.metadata.owner_references or []
    assert (owner.kind, owner.name, owner.uid, owner.controller) == (
        "Ingress",
        "web",
        ingress["metadata"]["uid"],
        True,
    )

    kube_api.delete_object("networking.k8s.io", "ingresses", NS, "web")
    assert await gslb_or_none(kube_store) is None  # garbage-collected with its owner


async def weighted_gslb(kube_api: KubeApi, kube_store: KubeGslbStore) -> Gslb:
    """A roundRobin Ingress's Gslb, to which the user then added a weight map."""
    kube_api.create_object(
        "networking.k8s.io", "v1", "ingresses", annotated({"k8gb.io/strategy": "roundRobin"})
    )
    gslb = await eventually(lambda: gslb_or_none(kube_store))
    gslb.spec.strategy.weight = {"eu": 80, "us": 20}
    return await kube_store.update(gslb)


async def test_changed_annotations_update_the_gslb_and_keep_the_users_weight(
    kube_api: KubeApi, kube_store: KubeGslbStore, triggers: GslbTriggers
) -> None:
    await weighted_gslb(kube_api, kube_store)

    ingress = kube_api.get_object("networking.k8s.io", "ingresses", NS, "web")
    assert ingress is not None
    ingress["metadata"]["annotations"]["k8gb.io/dns-ttl-seconds"] = "60"
    kube_api.update_object("networking.k8s.io", "ingresses", ingress)
    updated = await eventually(lambda: _with_ttl(kube_store, 60))
    assert updated.spec.strategy.weight == {"eu": 80, "us": 20}

    version = updated.metadata.resource_version
    ingress = kube_api.get_object("networking.k8s.io", "ingresses", NS, "web")
    assert ingress is not None
    ingress["status"] = {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}}
    kube_api.update_object("networking.k8s.io", "ingresses", ingress, status=True)
    marker = annotated({"k8gb.io/strategy": "roundRobin"}, name="marker")
    kube_api.create_object("networking.k8s.io", "v1", "ingresses", marker)
    await eventually(lambda: _exists(kube_store, "marker"))  # the watch has gone past the status change
    await triggers.idle()
    assert (
        await kube_store.get(KEY)
    ).metadata.resource_version == version  # nothing to change, nothing written


async def _with_ttl(store: KubeGslbStore, ttl: int) -> Gslb | None:
    gslb = await gslb_or_none(store)
    return gslb if gslb is not None and gslb.spec.strategy.dns_ttl_seconds == ttl else None


@pytest.mark.parametrize(
    ("annotations", "reason"),
    [
        pytest.param(
            {"k8gb.io/strategy": "failover"},
            "failover strategy requires annotation k8gb.io/primary-geotag",
            id="failover-without-primary",
        ),
        pytest.param(
            {"k8gb.io/strategy": "roundRobin", "k8gb.io/dns-ttl-seconds": "soon"},
            "can't parse annotation value soon to int for key k8gb.io/dns-ttl-seconds",
            id="ttl-not-an-int",
        ),
        pytest.param(
            {"k8gb.io/strategy": "nearest"}, "unsupported strategy type 'nearest'", id="unknown-strategy"
        ),
        # What Go's strconv.Atoi refuses, though Python's int() takes it.
        *(
            pytest.param(
                {"k8gb.io/strategy": "roundRobin", "k8gb.io/dns-ttl-seconds": raw},
                f"can't parse annotation value {raw} to int",
                id=f"ttl-{ident}",
            )
            for raw, ident in (("1_0", "underscore"), (" 7 ", "spaces"), ("\u0663", "arabic-indic-digit"))
        ),
    ],
)
async def test_a_broken_annotation_creates_nothing_and_says_why(
    kube_api: KubeApi,
    kube_store: KubeGslbStore,
    triggers: GslbTriggers,
    annotations: dict[str, str],
    reason: str,
) -> None:
    kube_api.create_object("networking.k8s.io", "v1", "ingresses", annotated(annotations))
    events = await eventually(lambda: kube_api.objects("", "events", NS))
    (event,) = events
    assert (event["type"], event["reason"]) == ("Warning", "InvalidIngressAnnotation")
    assert event["involvedObject"]["kind"] == "Ingress" and event["involvedObject"]["name"] == "web"
    assert reason in event["message"]
    await triggers.idle()
    assert await gslb_or_none(kube_store) is None


async def test_ingresses_owned_by_a_gslb_are_left_alone(
    kube_api: KubeApi, kube_store: KubeGslbStore, triggers: GslbTriggers
) -> None:
    owner = await kube_store.create(Gslb.model_validate(gslb_body("owner", namespace=NS)))
    ref = {
        "apiVersion": "k8gb.io/v1beta1",
        "kind": "Gslb",
        "name": "owner",
        "uid": owner.metadata.uid,
        "controller": True,
    }
    kube_api.create_object(
        "networking.k8s.io",
        "v1",
        "ingresses",
        annotated({"k8gb.io/strategy": "roundRobin"}, ownerReferences=[ref]),
    )
    kube_api.create_object(
        "networking.k8s.io", "v1", "ingresses", annotated({"k8gb.io/strategy": "roundRobin"}, name="marker")
    )
    await eventually(lambda: _exists(kube_store, "marker"))  # the watch has gone past the owned Ingress
    await triggers.idle()
    assert await gslb_or_none(kube_store) is None


async def _exists(store: KubeGslbStore, name: str) -> bool:
    try:
        await store.get(ObjectKey("k8gb.io", NS, name))
    except NotFound:
        return False
    return True


async def test_a_gslb_controlled_by_someone_else_is_not_taken_over(
    kube_api: KubeApi, kube_store: KubeGslbStore, triggers: GslbTriggers
) -> None:
    body = gslb_body("web", namespace=NS)
    body["metadata"]["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "mine", "uid": "0000", "controller": True}
    ]
    before = await kube_store.create(Gslb.model_validate(body))
    kube_api.create_object(
        "networking.k8s.io", "v1", "ingresses", annotated({"k8gb.io/strategy": "roundRobin"})
    )
    (event,) = await eventually(lambda: kube_api.objects("", "events", NS))
    assert "already controlled by ConfigMap mine" in event["message"]
    assert (await kube_store.get(KEY)).metadata.resource_version == before.metadata.resource_version


async def test_an_annotated_strategy_that_cannot_take_the_users_weight_leaves_the_gslb_and_says_why(
    kube_api: KubeApi, kube_store: KubeGslbStore, triggers: GslbTriggers, caplog: pytest.LogCaptureFixture
) -> None:
    weighted = await weighted_gslb(kube_api, kube_store)

    ingress = kube_api.get_object("networking.k8s.io", "ingresses", NS, "web")
    assert ingress is not None
    ingress["metadata"]["annotations"].update(
        {"k8gb.io/strategy": "failover", "k8gb.io/primary-geotag": "eu"}
    )
    kube_api.update_object("networking.k8s.io", "ingresses", ingress)
    (event,) = await eventually(lambda: kube_api.objects("", "events", NS))
    assert (event["type"], event["reason"]) == ("Warning", "InvalidIngressAnnotation")
    assert "has spec.strategy.weight, which only roundRobin takes" in event["message"]
    await triggers.idle()
    kept = await kube_store.get(KEY)
    assert kept.metadata.resource_version == weighted.metadata.resource_version  # still serving as it was
    assert "its Gslb is left as it is (still serving)" in caplog.text and ": no Gslb:" not in caplog.text


async def test_a_gslb_our_model_refuses_gets_an_event_on_the_ingress_not_a_traceback(
    kube_api: KubeApi, kube_store: KubeGslbStore, triggers: GslbTriggers, caplog: pytest.LogCaptureFixture
) -> None:
    broken = gslb_body("web", namespace=NS, strategy="failover", primaryGeoTag="eu", weight={"eu": 5})
    kube_api.create_object("k8gb.io", "v1beta1", "gslbs", broken)  # as kubectl can: the CRD allows it
    kube_api.create_object(
        "networking.k8s.io", "v1", "ingresses", annotated({"k8gb.io/strategy": "roundRobin"})
    )
    (event,) = await eventually(lambda: kube_api.objects("", "events", NS))
    assert (event["type"], event["reason"]) == ("Warning", "InvalidIngressAnnotation")
    assert "the Gslb cannot be read" in event["message"] and "weight" in event["message"]
    await triggers.idle()
    assert not [r for r in caplog.records if r.exc_info]


async def test_the_ingress_traceparent_goes_onto_its_gslb_without_a_marker(
    kube_api: KubeApi, kube_store: KubeGslbStore, triggers: GslbTriggers
) -> None:
    """So the reconcile of the Gslb write it caused joins the Ingress writer's trace (an unmarked
    traceparent is the cause of the write that sets it); the Ingress's own marker names the Ingress's
    generation, not the Gslb's, and is not copied."""
    tp = f"00-{7:032x}-{7:016x}-01"
    trace = {"k8gb.io/traceparent": tp, "k8gb.io/tracestate": "v=1", "k8gb.io/traceparent-generation": "1"}
    kube_api.create_object(
        "networking.k8s.io", "v1", "ingresses", annotated({"k8gb.io/strategy": "roundRobin", **trace})
    )
    gslb = await eventually(lambda: gslb_or_none(kube_store))
    assert gslb.metadata.annotations == {"k8gb.io/traceparent": tp, "k8gb.io/tracestate": "v=1"}


async def test_the_ingress_traceparent_never_replaces_a_newer_rest_writes_context(
    kube_api: KubeApi, kube_store: KubeGslbStore, triggers: GslbTriggers
) -> None:
    old, newer = f"00-{7:032x}-{7:016x}-01", f"00-{8:032x}-{8:016x}-01"
    kube_api.create_object(
        "networking.k8s.io",
        "v1",
        "ingresses",
        annotated({"k8gb.io/strategy": "roundRobin", "k8gb.io/traceparent": old}),
    )
    gslb = await eventually(lambda: gslb_or_none(kube_store))
    gslb.metadata.annotations = {"k8gb.io/traceparent": newer, "k8gb.io/traceparent-generation": "1"}
    await kube_store.update(gslb)  # as a REST write records its caller

    ingress = kube_api.get_object("networking.k8s.io", "ingresses", NS, "web")
    assert ingress is not None
    ingress["metadata"]["annotations"]["k8gb.io/dns-ttl-seconds"] = "60"
    kube_api.update_object("networking.k8s.io", "ingresses", ingress)
    updated = await eventually(lambda: _with_ttl(kube_store, 60))
    assert updated.metadata.annotations == {
        "k8gb.io/traceparent": newer,
        "k8gb.io/traceparent-generation": "1",
    }


async def test_a_gslb_k8gb_wrote_for_an_ingress_is_taken_over_without_a_write(
    kube_api: KubeApi, kube: KubeClient, kube_store: KubeGslbStore
) -> None:
    """k8gb's handler writes `ingress: {}` beside the resourceRef (Go keeps an empty struct): pygslb took
    over such a Gslb by rewriting it only to drop that, a generation bump and a second reconcile."""
    ingress = kube_api.create_object(
        "networking.k8s.io", "v1", "ingresses", annotated({"k8gb.io/strategy": "roundRobin"})
    )
    owner = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "name": "web",
        "uid": ingress["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    written = kube_api.create_object(
        "k8gb.io",
        "v1beta1",
        "gslbs",
        {
            "apiVersion": "k8gb.io/v1beta1",
            "kind": "Gslb",
            "metadata": {"name": "web", "namespace": NS, "ownerReferences": [owner]},
            "spec": {
                "ingress": {},
                "resourceRef": {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "web"},
                "strategy": {"type": "roundRobin", "dnsTtlSeconds": 30},
            },
        },
    )
    workflow = IngressWorkflow(kube, store=kube_store, events=KubeEvents(kube))
    assert await workflow.handle(ingress) is not None
    after = kube_api.get_object("k8gb.io", "gslbs", NS, "web")
    assert after is not None
    assert after["metadata"]["resourceVersion"] == written["metadata"]["resourceVersion"]
    assert after["spec"]["ingress"] == {}
