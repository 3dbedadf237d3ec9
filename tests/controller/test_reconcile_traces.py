"""The queue's trace rules through a real controller and the real OTLP receiver:
a write's reconcile is its child; collapsed writes become links; resync and health changes are new
roots linked to the last write."""

import secrets

import pytest

from app.domain.gslb import Gslb
from app.domain.health import ServiceState
from app.stores.base import ObjectKey
from app.telemetry.carry import TRACE_GENERATION, TRACEPARENT
from tests.support.gslb_factory import gslb_body

KEY = ObjectKey("k8gb.io", "test-gslb", "traced")


def traceparent() -> tuple[str, str, str]:
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return trace_id, span_id, f"00-{trace_id}-{span_id}-01"


def annotated(generation: int, tp: str, dnsTtlSeconds: int = 30) -> Gslb:  # noqa: N803 - the wire name
    body = gslb_body("traced", dnsTtlSeconds=dnsTtlSeconds)
    body["metadata"]["annotations"] = {TRACEPARENT: tp, TRACE_GENERATION: str(generation)}
    return Gslb.model_validate(body)


def reconciles(spans, trace_id=None):
    return [s for s in spans if s.name == "Reconcile" and (trace_id is None or s.trace_id == trace_id)]


async def test_write_is_parent_and_collapsed_writes_are_links(harness, global_otlp_receiver):
    receiver = global_otlp_receiver
    harness.health.states[("test-gslb", "frontend-podinfo")] = ServiceState.HEALTHY
    t1, s1, tp1 = traceparent()
    harness.sink.gate = gate = __import__("asyncio").Event()
    created = await harness.store.create(annotated(1, tp1))
    await harness.sink.entered.wait()  # reconcile of generation 1 is running and held

    # Two writes land while it runs: they collapse into one follow-up reconcile.
    t2, s2, tp2 = traceparent()
    t3, s3, tp3 = traceparent()
    current = await harness.store.get(KEY)
    second = annotated(2, tp2, dnsTtlSeconds=60)
    second.metadata.resource_version = current.metadata.resource_version
    current = await harness.store.update(second)
    third = annotated(3, tp3, dnsTtlSeconds=90)
    third.metadata.resource_version = current.metadata.resource_version
    await harness.store.update(third)
    gate.set()

    spans = await receiver.wait_for(lambda spans: reconciles(spans, t1) and reconciles(spans, t3))
    first = reconciles(spans, t1)[0]
    assert first.parent_span_id == s1
    follow_up = reconciles(spans, t3)[0]
    assert follow_up.parent_span_id == s3, "the newest cause is the parent"
    assert (t2, s2) in follow_up.links, "older collapsed causes are span links"
    assert not reconciles(spans, t2), "no separate reconcile for a collapsed write"
    assert created.metadata.generation == 1


@pytest.mark.parametrize("harness", [{"requeue": 0.3}], indirect=True)
async def test_resync_and_health_change_start_new_roots_linked_to_last_write(harness, global_otlp_receiver):
    receiver = global_otlp_receiver
    t1, s1, tp1 = traceparent()
    await harness.store.create(annotated(1, tp1))
    spans = await receiver.wait_for(lambda spans: reconciles(spans, t1))
    write_reconcile = reconciles(spans, t1)[0]

    def roots_linked(spans, reason):
        return [
            s
            for s in reconciles(spans)
            if s.parent_span_id == ""
            and (t1, s1) in s.links
            and s.attributes.get("pygslb.reconcile.trigger") == reason
        ]

    spans = await receiver.wait_for(lambda spans: roots_linked(spans, "resync"))
    resync = roots_linked(spans, "resync")[0]
    assert resync.trace_id != t1 and resync.span_id != write_reconcile.span_id

    harness.health.states[("test-gslb", "frontend-podinfo")] = ServiceState.HEALTHY
    harness.controller.service_changed("test-gslb", "frontend-podinfo")
    spans = await receiver.wait_for(lambda spans: roots_linked(spans, "health-change"))
    assert roots_linked(spans, "health-change")[0].trace_id != t1


def unmarked(tp: str, dnsTtlSeconds: int = 30) -> Gslb:  # noqa: N803 - the wire name
    """What a kubectl user writes: the traceparent annotation alone, no generation marker."""
    body = gslb_body("traced", dnsTtlSeconds=dnsTtlSeconds)
    body["metadata"]["annotations"] = {TRACEPARENT: tp}
    return Gslb.model_validate(body)


async def test_an_unmarked_traceparent_is_the_cause_of_the_write_that_sets_it_only(
    harness, global_otlp_receiver
):
    receiver = global_otlp_receiver
    t1, s1, tp1 = traceparent()
    await harness.store.create(unmarked(tp1))
    spans = await receiver.wait_for(lambda spans: reconciles(spans, t1))
    assert reconciles(spans, t1)[0].parent_span_id == s1

    # A later spec change that leaves the annotation as it was: an older write's context, not this one's.
    seen = {s.span_id for s in receiver.spans}  # the receiver is shared: other tests' spans are there too
    later = unmarked(tp1, dnsTtlSeconds=60)
    later.metadata.resource_version = (await harness.store.get(KEY)).metadata.resource_version
    changed = await harness.store.update(later)
    assert changed.metadata.generation == 2

    def generation_2(spans):
        return [
            s
            for s in reconciles(spans)
            if s.span_id not in seen and s.attributes.get("k8gb.gslb.generation") == 2
        ]

    spans = await receiver.wait_for(generation_2)
    assert generation_2(spans)[0].trace_id != t1 and generation_2(spans)[0].parent_span_id == ""

    # Changed with the spec: this write's cause again.
    t3, s3, tp3 = traceparent()
    third = unmarked(tp3, dnsTtlSeconds=90)
    third.metadata.resource_version = (await harness.store.get(KEY)).metadata.resource_version
    await harness.store.update(third)
    spans = await receiver.wait_for(lambda spans: reconciles(spans, t3))
    assert reconciles(spans, t3)[0].parent_span_id == s3


@pytest.mark.parametrize("harness", [{"requeue": 0.3}], indirect=True)
async def test_after_a_restart_resyncs_still_link_to_the_last_write(harness, global_otlp_receiver):
    """The write was reconciled before the restart (observed): the new process does not reconcile it
    again in the caller's trace, but its resyncs link to it as they did before."""
    from app.controller.runner import Controller

    receiver = global_otlp_receiver
    t1, s1, tp1 = traceparent()
    await harness.store.create(annotated(1, tp1))
    await receiver.wait_for(lambda spans: reconciles(spans, t1))
    await harness.controller.wait_idle()
    await harness.controller.stop(grace=2)

    restarted = Controller(
        store=harness.store,
        reconciler=harness.controller.reconciler,
        metrics=harness.metrics,
        requeue_seconds=0.3,
    )
    harness.controller = restarted  # stopped by the fixture
    await restarted.start()

    def linked_resyncs(spans):
        return [
            s
            for s in reconciles(spans)
            if s.attributes.get("pygslb.reconcile.trigger") == "resync" and (t1, s1) in s.links
        ]

    spans = await receiver.wait_for(linked_resyncs)
    assert linked_resyncs(spans)[0].parent_span_id == "" and linked_resyncs(spans)[0].trace_id != t1


def with_annotations(gslb: Gslb, **changes: str | None) -> Gslb:
    annotations = {**(gslb.metadata.annotations or {}), **changes}
    gslb.metadata.annotations = {k: v for k, v in annotations.items() if v is not None}
    return gslb


async def test_a_later_change_that_records_no_context_is_not_blamed_on_the_traced_write(
    harness, global_otlp_receiver
):
    """A traced POST marks its context for generation 1. A `kubectl annotate` of a k8gb annotation
    (a reconcile, the same generation) and a `kubectl delete` record no context: their reconciles are
    new roots (the annotate's linked to that write), not the POST caller's children."""
    receiver = global_otlp_receiver
    t1, s1, tp1 = traceparent()
    await harness.store.create(annotated(1, tp1))
    spans = await receiver.wait_for(lambda spans: reconciles(spans, t1))
    assert len(reconciles(spans, t1)) == 1

    def after(action_seen: set[str], trigger: str):
        return lambda spans: [
            s
            for s in reconciles(spans)
            if s.span_id not in action_seen and s.attributes.get("pygslb.reconcile.trigger") == trigger
        ]

    seen = {s.span_id for s in reconciles(receiver.spans)}
    current = await harness.store.get(KEY)
    annotate = with_annotations(current, **{"k8gb.io/exposed-ip-addresses": "10.0.0.9"})
    assert (await harness.store.update(annotate)).metadata.generation == 1
    new_writes = after(seen, "write")
    annotated_reconcile = new_writes(await receiver.wait_for(new_writes))[0]
    assert annotated_reconcile.trace_id != t1 and annotated_reconcile.parent_span_id == ""
    assert (t1, s1) in annotated_reconcile.links

    seen = {s.span_id for s in reconciles(receiver.spans)}
    await harness.store.delete(KEY, None)
    new_deletes = after(seen, "delete")
    deleted = new_deletes(await receiver.wait_for(new_deletes))[0]
    assert deleted.trace_id != t1 and deleted.parent_span_id == ""


async def test_a_delete_that_records_its_caller_first_is_in_the_callers_trace(harness, global_otlp_receiver):
    """What a traced REST DELETE does: stamp its context for the current generation, then delete."""
    receiver = global_otlp_receiver
    t1, _, tp1 = traceparent()
    await harness.store.create(annotated(1, tp1))
    await receiver.wait_for(lambda spans: reconciles(spans, t1))
    t2, s2, tp2 = traceparent()
    await harness.store.update(with_annotations(await harness.store.get(KEY), **{TRACEPARENT: tp2}))
    await harness.store.delete(KEY, None)
    spans = await receiver.wait_for(lambda spans: reconciles(spans, t2))
    assert reconciles(spans, t2)[0].parent_span_id == s2
    assert reconciles(spans, t2)[0].attributes.get("pygslb.reconcile.trigger") == "delete"


async def test_a_new_traceparent_beside_another_writers_marker_is_this_writes_cause(
    harness, global_otlp_receiver
):
    """kubectl apply keeps annotations it did not set: a REST write's marker for generation 1 stays
    beside the traceparent a kubectl user now sets with a spec change (generation 2). The marker is
    stale, the traceparent this write's, unmarked: the reconcile is its child."""
    receiver = global_otlp_receiver
    t1, _, tp1 = traceparent()
    await harness.store.create(annotated(1, tp1))
    await receiver.wait_for(lambda spans: reconciles(spans, t1))
    t2, s2, tp2 = traceparent()
    current = await harness.store.get(KEY)
    current.spec.strategy.dns_ttl_seconds = 45
    changed = await harness.store.update(with_annotations(current, **{TRACEPARENT: tp2}))
    assert changed.metadata.generation == 2
    assert (changed.metadata.annotations or {})[TRACE_GENERATION] == "1"
    spans = await receiver.wait_for(lambda spans: reconciles(spans, t2))
    assert reconciles(spans, t2)[0].parent_span_id == s2
