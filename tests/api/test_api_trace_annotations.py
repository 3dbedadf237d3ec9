"""A write that makes a new generation records the writer's trace context on the object (architecture.md)."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry import trace

from app.api.tracemark import stamp_trace
from app.domain.gslb import GROUP, LEGACY_GROUP, Gslb, GslbStatus
from app.stores.base import ObjectKey
from tests.support.api_server import Api
from tests.support.gslb_factory import gslb_body, make_gslb

COLLECTION = f"/apis/{GROUP}/v1beta1/namespaces/test-gslb/gslbs"
ITEM = f"{COLLECTION}/app"
MERGE = {"Content-Type": "application/merge-patch+json"}
TP = "k8gb.io/traceparent"
TS = "k8gb.io/tracestate"
GEN = "k8gb.io/traceparent-generation"


def traceparent(n: int) -> str:
    return f"00-{n:032x}-{n:016x}-01"


def trace_id(value: str) -> str:
    return value.split("-")[1]


def annotations(obj: dict[str, Any]) -> dict[str, str]:
    found: dict[str, str] = obj["metadata"].get("annotations", {})
    return found


async def test_generations_carry_their_writers_context(api: Api) -> None:
    created = await api.client.post(
        COLLECTION, json=gslb_body("app"), headers={"traceparent": traceparent(1), "tracestate": "vendor=a"}
    )
    assert created.status_code == 201
    assert trace_id(created.headers["traceresponse"]) == f"{1:032x}"
    first = annotations(created.json())
    assert trace_id(first[TP]) == f"{1:032x}" and first[GEN] == "1" and first[TS] == "vendor=a"

    # Spec change: a new generation, the new caller's context.
    replaced = await api.client.put(
        ITEM, json=gslb_body("app", strategy="geoip"), headers={"traceparent": traceparent(2)}
    )
    second = annotations(replaced.json())
    assert replaced.json()["metadata"]["generation"] == 2
    assert trace_id(second[TP]) == f"{2:032x}" and second[GEN] == "2" and TS not in second

    # Metadata only: no new generation, the recorded cause stays.
    labelled = await api.client.patch(
        ITEM, json={"metadata": {"labels": {"a": "b"}}}, headers={**MERGE, "traceparent": traceparent(3)}
    )
    assert labelled.json()["metadata"]["generation"] == 2
    assert annotations(labelled.json()) == second

    # Spec-changing patch: generation 3 with its own context.
    patched = await api.client.patch(
        ITEM,
        json={"spec": {"strategy": {"dnsTtlSeconds": 7}}},
        headers={**MERGE, "traceparent": traceparent(4)},
    )
    third = annotations(patched.json())
    assert trace_id(third[TP]) == f"{4:032x}" and third[GEN] == "3"


async def test_caller_set_annotation_is_kept(api: Api) -> None:
    body = gslb_body("app")
    body["metadata"]["annotations"] = {TP: traceparent(9)}
    created = await api.client.post(COLLECTION, json=body, headers={"traceparent": traceparent(1)})
    assert annotations(created.json()) == {TP: traceparent(9), GEN: "1"}

    patch = {"metadata": {"annotations": {TP: traceparent(10)}}, "spec": {"strategy": {"type": "geoip"}}}
    patched = await api.client.patch(ITEM, json=patch, headers={**MERGE, "traceparent": traceparent(2)})
    assert annotations(patched.json()) == {TP: traceparent(10), GEN: "2"}


async def test_carried_over_annotation_is_not_reused_for_a_new_generation(api: Api) -> None:
    created = (
        await api.client.post(COLLECTION, json=gslb_body("app"), headers={"traceparent": traceparent(1)})
    ).json()
    edited = {**created, "spec": {**created["spec"], "strategy": {"type": "failover"}}}  # kubectl-edit style
    replaced = (await api.client.put(ITEM, json=edited)).json()
    after = annotations(replaced)
    assert replaced["metadata"]["generation"] == 2
    assert after.get(TP) != traceparent(1)
    assert after.get(GEN) in (None, "2")


async def test_a_saved_manifest_does_not_bring_back_an_older_writes_trace(api: Api) -> None:
    """GET (or `gslb get -o yaml`) returns the annotations with their generation marker; sending that
    manifest back later, for a newer generation, is a copy of an earlier read, not the caller's choice:
    the reconcile of the new generation joins this request's trace, never the first writer's."""
    saved = (
        await api.client.post(COLLECTION, json=gslb_body("app"), headers={"traceparent": traceparent(1)})
    ).json()
    assert annotations(saved)[GEN] == "1"
    other = await api.client.patch(
        ITEM,
        json={"spec": {"strategy": {"dnsTtlSeconds": 9}}},
        headers={**MERGE, "traceparent": traceparent(2)},
    )
    assert other.json()["metadata"]["generation"] == 2
    edited = {**saved, "spec": {**saved["spec"], "strategy": {"type": "geoip"}}}
    del edited["metadata"]["resourceVersion"]
    replaced = (await api.client.put(ITEM, json=edited, headers={"traceparent": traceparent(3)})).json()
    assert replaced["metadata"]["generation"] == 3
    assert trace_id(annotations(replaced)[TP]) == f"{3:032x}" and annotations(replaced)[GEN] == "3"

    # The same as a merge patch carrying the saved annotations.
    patch = {"metadata": {"annotations": annotations(saved)}, "spec": {"strategy": {"type": "failover"}}}
    patched = (
        await api.client.patch(ITEM, json=patch, headers={**MERGE, "traceparent": traceparent(4)})
    ).json()
    assert trace_id(annotations(patched)[TP]) == f"{4:032x}" and annotations(patched)[GEN] == "4"


async def test_a_marker_for_another_generation_is_ignored_on_create(api: Api) -> None:
    body = gslb_body("app")
    body["metadata"]["annotations"] = {TP: traceparent(9), GEN: "7"}
    created = await api.client.post(COLLECTION, json=body, headers={"traceparent": traceparent(1)})
    recorded = annotations(created.json())  # the request's context: the caller's, or its server span's
    assert (trace_id(recorded[TP]), recorded[GEN]) == (f"{1:032x}", "1")


async def test_malformed_traceparent_never_fails_a_write(api: Api) -> None:
    response = await api.client.post(COLLECTION, json=gslb_body("app"), headers={"traceparent": "garbage"})
    assert response.status_code == 201
    assert annotations(response.json()).get(TP) != "garbage"


def test_current_span_wins_over_the_header() -> None:
    current = trace.SpanContext(trace_id=0xAB, span_id=0xCD, is_remote=False, trace_flags=trace.TraceFlags(1))
    with trace.use_span(trace.NonRecordingSpan(current)):
        stamped = stamp_trace(
            make_gslb("app"), generation=4, caller_set=False, headers={"traceparent": traceparent(1)}
        )
    got = stamped.metadata.annotations or {}
    assert got[TP] == f"00-{0xAB:032x}-{0xCD:016x}-01" and got[GEN] == "4"


def test_no_context_drops_stale_annotations() -> None:
    gslb = make_gslb("app")
    gslb.metadata.annotations = {TP: traceparent(1), GEN: "1", "other": "x"}
    stamped = stamp_trace(gslb, generation=2, caller_set=False, headers={})
    assert stamped.metadata.annotations == {"other": "x"}


async def test_a_malformed_annotation_does_not_displace_the_callers_own_context(api: Api) -> None:
    body = gslb_body("app")
    body["metadata"]["annotations"] = {TP: "not-a-traceparent"}
    created = await api.client.post(COLLECTION, json=body, headers={"traceparent": traceparent(7)})
    assert created.status_code == 201
    recorded = annotations(created.json())
    assert trace_id(recorded[TP]) == f"{7:032x}" and recorded[GEN] == "1"


async def test_an_annotation_change_that_reconciles_records_its_own_caller(api: Api) -> None:
    """`k8gb.io/exposed-ip-addresses` changes what a reconcile publishes, with no new generation: its
    caller is recorded for the current generation, so the reconcile is not put in the last spec writer's
    trace; a label change reconciles nothing and records nothing."""
    await api.client.post(COLLECTION, json=gslb_body("app"), headers={"traceparent": traceparent(1)})
    patch = {"metadata": {"annotations": {"k8gb.io/exposed-ip-addresses": "10.0.0.9"}}}
    patched = (
        await api.client.patch(ITEM, json=patch, headers={**MERGE, "traceparent": traceparent(2)})
    ).json()
    recorded = annotations(patched)
    assert patched["metadata"]["generation"] == 1
    assert (trace_id(recorded[TP]), recorded[GEN]) == (f"{2:032x}", "1")

    labelled = await api.client.patch(
        ITEM, json={"metadata": {"labels": {"a": "b"}}}, headers={**MERGE, "traceparent": traceparent(3)}
    )
    assert trace_id(annotations(labelled.json())[TP]) == f"{2:032x}"


async def test_putting_the_manifest_back_as_it_was_changes_nothing(api: Api) -> None:
    """`gslb apply` of an unchanged manifest: the trace annotations the server recorded are kept (they
    are its bookkeeping), so nothing changes and the write that made the generation stays its cause."""
    created = (
        await api.client.post(COLLECTION, json=gslb_body("app"), headers={"traceparent": traceparent(1)})
    ).json()
    again = await api.client.put(ITEM, json=gslb_body("app"), headers={"traceparent": traceparent(2)})
    assert again.status_code == 200, again.text
    assert again.json()["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    assert annotations(again.json()) == annotations(created)


async def test_a_patch_sending_the_current_traceparent_again_records_its_own_caller(api: Api) -> None:
    """A merge patch that carries the object's current `k8gb.io/traceparent` back (a copy of what it
    read) is not the caller naming a context: as with PUT, the new generation joins this request's
    trace, not the first writer's."""
    created = await api.client.post(
        COLLECTION, json=gslb_body("app"), headers={"traceparent": traceparent(1)}
    )
    current = annotations(created.json())[TP]
    patch = {"metadata": {"annotations": {TP: current}}, "spec": {"strategy": {"dnsTtlSeconds": 31}}}
    patched = await api.client.patch(ITEM, json=patch, headers={**MERGE, "traceparent": traceparent(2)})
    recorded = annotations(patched.json())
    assert patched.json()["metadata"]["generation"] == 2
    assert (trace_id(recorded[TP]), recorded[GEN]) == (f"{2:032x}", "2")


async def test_a_traced_delete_is_not_refused_when_a_status_write_comes_in_between(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A DELETE without preconditions is "last write wins" however it is traced: when the controller's
    status write lands between the DELETE's read and the stamp of its caller, it reads again (it was a
    409 and the object stayed)."""
    await api.client.post(COLLECTION, json=gslb_body("app"), headers={"traceparent": traceparent(1)})
    read = api.store.get
    raced: list[str] = []

    async def read_then_the_controller_writes(key: ObjectKey) -> Gslb:
        found = await read(key)
        if not raced:
            raced.append(found.metadata.resource_version or "")
            await api.store.update_status(key, GslbStatus(geo_tag="eu"))
        return found

    monkeypatch.setattr(api.store, "get", read_then_the_controller_writes)
    deleted = await api.client.delete(ITEM, headers={"traceparent": traceparent(2)})
    assert deleted.status_code == 200, deleted.text
    assert raced
    monkeypatch.undo()
    assert (await api.client.get(ITEM)).status_code == 404


async def test_a_repeated_traceparent_header_names_no_caller_on_the_object(api: Api) -> None:
    """Sent twice, traceparent is malformed: neither copy is recorded (the first one was, while the
    response said the request joined no caller's trace)."""
    headers = [("traceparent", traceparent(1)), ("traceparent", traceparent(2))]
    created = await api.client.post(COLLECTION, json=gslb_body("app"), headers=headers)
    assert created.status_code == 201
    answered = created.headers["traceresponse"].split("-")[1]
    assert answered not in (f"{1:032x}", f"{2:032x}")
    recorded = annotations(created.json()).get(TP)  # tracing on (a global provider): the new server span's
    assert recorded is None or trace_id(recorded) == answered


async def test_a_traceparent_set_alone_claims_no_generation(api: Api) -> None:
    """A PATCH of the traceparent alone reconciles nothing: the marker of the write that made the
    generation must not stay beside it, or the new context would pass for that generation's cause
    (what resyncs link to, and what a restart reconciles under)."""
    await api.client.post(COLLECTION, json=gslb_body("app"), headers={"traceparent": traceparent(1)})
    patch = {"metadata": {"annotations": {TP: traceparent(9)}}}
    patched = await api.client.patch(ITEM, json=patch, headers={**MERGE, "traceparent": traceparent(2)})
    assert patched.json()["metadata"]["generation"] == 1
    assert annotations(patched.json()) == {TP: traceparent(9)}


async def test_a_stale_copy_put_within_one_generation_records_its_own_caller(api: Api) -> None:
    """An annotation change keeps the generation, so the marker cannot tell its write from the
    POST's: PUT back of the POST's answer (a copy of an earlier read) must not bring the POST's
    caller back as the cause of this change."""
    created = (
        await api.client.post(COLLECTION, json=gslb_body("app"), headers={"traceparent": traceparent(1)})
    ).json()
    patch = {"metadata": {"annotations": {"k8gb.io/exposed-ip-addresses": "10.0.0.9"}}}
    await api.client.patch(ITEM, json=patch, headers={**MERGE, "traceparent": traceparent(2)})
    del created["metadata"]["resourceVersion"]
    replaced = (await api.client.put(ITEM, json=created, headers={"traceparent": traceparent(3)})).json()
    recorded = annotations(replaced)
    assert replaced["metadata"]["generation"] == 1 and "k8gb.io/exposed-ip-addresses" not in recorded
    assert (trace_id(recorded[TP]), recorded[GEN]) == (f"{3:032x}", "1")


async def test_a_migration_label_records_its_caller(api: Api) -> None:
    """Labelling a legacy Gslb for migration reconciles it (k8gb's migrator watches the label): the
    caller who set it is recorded, as for any change that reconciles."""
    legacy = f"/apis/{LEGACY_GROUP}/v1beta1/namespaces/test-gslb/gslbs"
    body = gslb_body("app")
    body["apiVersion"] = f"{LEGACY_GROUP}/v1beta1"
    await api.client.post(legacy, json=body, headers={"traceparent": traceparent(1)})
    patch = {"metadata": {"labels": {"k8gb.io/migration-requested": "true"}}}
    labelled = await api.client.patch(
        f"{legacy}/app", json=patch, headers={**MERGE, "traceparent": traceparent(2)}
    )
    assert labelled.status_code == 200, labelled.text
    recorded = annotations(labelled.json())
    assert (trace_id(recorded[TP]), recorded[GEN]) == (f"{2:032x}", "1")
