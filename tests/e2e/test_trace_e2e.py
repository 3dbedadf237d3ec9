"""One trace from the caller through `gslb serve`: API server span → Reconcile → its steps, exported
over OTLP to a real receiver; also across a restart between the write and the reconcile."""

import asyncio
import secrets
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.instance import ROOT, Backend, a_records, eventually, running, services_yaml
from tests.support.otlp import OtlpHttpReceiver
from tests.support.ports import free_port

pytestmark = pytest.mark.e2e

EXAMPLE = (ROOT / "examples" / "gslb-roundrobin.yaml").read_text()
COLLECTION = "/apis/k8gb.io/v1beta1/namespaces/test-gslb/gslbs"
HOST = "roundrobin.cloud.example.com"
STEPS = {"resolveServers", "serviceHealth", "exposedIPs", "gslbDNSEndpoint", "SaveDNSEndpoint"}


@pytest.fixture
def receiver():
    with OtlpHttpReceiver() as server:
        yield server


@pytest.fixture
async def backend():
    server = await Backend().start()
    yield server
    await server.stop()


def settings(tmp_path: Path, backend: Backend, receiver: OtlpHttpReceiver) -> dict[str, str]:
    services = tmp_path / "services.yaml"
    services.write_text(services_yaml({"test-gslb/frontend-podinfo": [f"127.0.0.1:{backend.port}"]}))
    return {
        "GSLB_SERVICES_FILE": str(services),
        "CLUSTER_EXPOSED_IPS": "10.0.0.1",
        "TRACING_ENABLED": "true",
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.host_port,  # k8gb's host:port form
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }


def caller() -> tuple[str, str, str]:
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return trace_id, span_id, f"00-{trace_id}-{span_id}-01"


def assert_reconcile_tree(spans, trace_id: str, parent_id: str) -> None:
    mine = [s for s in spans if s.trace_id == trace_id]
    reconcile = next(s for s in mine if s.name == "Reconcile")
    assert reconcile.parent_span_id == parent_id, "Reconcile must be a child of the write's span"
    assert reconcile.attributes["k8gb.gslb.name"] == "test-gslb"
    assert reconcile.attributes["k8gb.gslb.namespace"] == "test-gslb"
    children = {s.name: s for s in mine if s.parent_span_id == reconcile.span_id}
    assert STEPS <= set(children), f"missing steps: {STEPS - set(children)}"
    assert children["serviceHealth"].attributes[f"k8gb.health.{HOST}"] == "Healthy"


async def test_post_with_traceparent_reaches_reconcile_and_steps(tmp_path, backend, receiver):
    trace_id, span_id, traceparent = caller()
    async with running(tmp_path, **settings(tmp_path, backend, receiver)) as gslb:
        async with httpx.AsyncClient(base_url=gslb.api, timeout=10) as client:  # not instrumented
            created = await client.post(
                COLLECTION,
                content=EXAMPLE,
                headers={"Content-Type": "application/yaml", "traceparent": traceparent},
            )
        assert created.status_code == 201, created.text
        assert created.headers["traceresponse"].split("-")[1] == trace_id
        assert created.json()["metadata"]["annotations"]["k8gb.io/traceparent"].split("-")[1] == trace_id
        await eventually(lambda: a_records(gslb.dns, HOST), {"10.0.0.1"})
        spans = await receiver.wait_for(
            lambda spans: {s.name for s in spans if s.trace_id == trace_id} >= STEPS | {"Reconcile"}
        )
    server = next(s for s in spans if s.trace_id == trace_id and s.parent_span_id == span_id)
    assert server.kind == 2  # SERVER
    assert server.name == "POST /apis/k8gb.io/v1beta1/namespaces/{namespace}/gslbs"
    assert server.attributes["http.route"] == "/apis/k8gb.io/v1beta1/namespaces/{namespace}/gslbs"
    assert server.resource["service.name"] == "pygslb"
    assert_reconcile_tree(spans, trace_id, server.span_id)


async def test_restart_between_write_and_reconcile_keeps_the_trace(tmp_path, backend, receiver):
    trace_id, span_id, traceparent = caller()
    base = settings(tmp_path, backend, receiver)
    # An API-only process takes the write (as a non-leader replica would) and stops.
    async with running(tmp_path, "api", **base, GSLB_RECONCILE="false") as api_only:
        async with httpx.AsyncClient(base_url=api_only.api, timeout=10) as client:
            created = await client.post(
                COLLECTION,
                content=EXAMPLE,
                headers={"Content-Type": "application/yaml", "traceparent": traceparent},
            )
        assert created.status_code == 201
        data_dir = api_only.env["GSLB_DATA_DIR"]
    server = next(
        s
        for s in await receiver.wait_for(lambda spans: any(s.parent_span_id == span_id for s in spans))
        if s.parent_span_id == span_id
    )
    # A new process on the same data reconciles the pending generation inside the caller's trace.
    async with running(tmp_path, "controller", **base, GSLB_DATA_DIR=data_dir) as controller:
        await eventually(lambda: a_records(controller.dns, HOST), {"10.0.0.1"})
        spans = await receiver.wait_for(
            lambda spans: {s.name for s in spans if s.trace_id == trace_id} >= STEPS | {"Reconcile"}
        )
    assert_reconcile_tree(spans, trace_id, server.span_id)


async def test_update_patch_and_gslb_apply_annotation_each_join_their_callers_trace(
    tmp_path, backend, receiver
):
    async with running(tmp_path, **settings(tmp_path, backend, receiver)) as gslb:
        url = f"{COLLECTION}/test-gslb"
        async with httpx.AsyncClient(base_url=gslb.api, timeout=10) as client:
            assert (
                await client.post(COLLECTION, content=EXAMPLE, headers={"Content-Type": "application/yaml"})
            ).status_code == 201

            async def observed():
                return ((await client.get(url)).json().get("status") or {}).get("observedGeneration")

            await eventually(observed, 1)  # the status write is done: the next GET is current

            # PUT (replace) with a new TTL: generation 2, reconciled inside the PUT's trace.
            put_trace, put_span, put_tp = caller()
            body = (await client.get(url)).json()
            body["spec"]["strategy"]["dnsTtlSeconds"] = 60
            replaced = await client.put(url, json=body, headers={"traceparent": put_tp})
            assert replaced.status_code == 200, replaced.text
            assert replaced.json()["metadata"]["generation"] == 2

            # PATCH (merge patch): generation 3, inside the PATCH's trace.
            patch_trace, patch_span, patch_tp = caller()
            patched = await client.patch(
                url,
                json={"spec": {"strategy": {"dnsTtlSeconds": 90}}},
                headers={"traceparent": patch_tp, "Content-Type": "application/merge-patch+json"},
            )
            assert patched.status_code == 200, patched.text
            await eventually(observed, 3)

        # `gslb apply` with the annotation set by the user (as a kubectl user would): generation 4.
        user_trace, user_span, user_tp = caller()
        manifest = EXAMPLE.replace(
            "  namespace: test-gslb\n",
            f"  namespace: test-gslb\n  annotations:\n    k8gb.io/traceparent: {user_tp}\n",
        ).replace("dnsTtlSeconds: 30", "dnsTtlSeconds: 120")
        (tmp_path / "apply.yaml").write_text(manifest)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "app",
            "apply",
            "-f",
            str(tmp_path / "apply.yaml"),
            "--server",
            gslb.api,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        assert "configured" in out.decode()

        # DELETE: the withdrawal reconcile joins the DELETE's trace.
        delete_trace, delete_span, delete_tp = caller()
        async with httpx.AsyncClient(base_url=gslb.api, timeout=10) as client:
            assert (await client.delete(url, headers={"traceparent": delete_tp})).status_code == 200
        await eventually(lambda: a_records(gslb.dns, HOST), None)

        spans = await receiver.wait_for(
            lambda spans: (
                all(
                    any(s.name == "Reconcile" and s.trace_id == t for s in spans)
                    for t in (put_trace, patch_trace, user_trace)
                )
                and any(s.name == "Reconcile" and s.attributes.get("pygslb.deleted") for s in spans)
            )
        )

    def reconcile_of(trace_id):
        return next(s for s in spans if s.name == "Reconcile" and s.trace_id == trace_id)

    def server_of(trace_id, parent):
        return next(s for s in spans if s.trace_id == trace_id and s.parent_span_id == parent and s.kind == 2)

    assert reconcile_of(put_trace).parent_span_id == server_of(put_trace, put_span).span_id
    assert reconcile_of(put_trace).attributes["k8gb.gslb.generation"] == 2
    assert reconcile_of(patch_trace).parent_span_id == server_of(patch_trace, patch_span).span_id
    assert reconcile_of(patch_trace).attributes["k8gb.gslb.generation"] == 3
    # The user's own annotation names the parent directly.
    assert reconcile_of(user_trace).parent_span_id == user_span
    assert reconcile_of(user_trace).attributes["k8gb.gslb.generation"] == 4
    withdrawal = next(s for s in spans if s.name == "Reconcile" and s.attributes.get("pygslb.deleted"))
    assert withdrawal.trace_id == delete_trace
    assert withdrawal.parent_span_id == server_of(delete_trace, delete_span).span_id
    # The DELETE recorded its caller on the object without a reconcile of its own first: one
    # Reconcile in its trace, the withdrawal.
    assert [
        s.attributes.get("pygslb.reconcile.trigger")
        for s in spans
        if s.name == "Reconcile" and s.trace_id == delete_trace
    ] == ["delete"]


def series(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels` (`error_type="*"`: any error)."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        if all(
            (f'{k}="' in line and f'{k}=""' not in line) if v == "*" else f'{k}="{v}"' in line
            for k, v in labels.items()
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_spans_lost_to_a_full_queue_or_a_failing_collector_are_counted_on_metrics(tmp_path, backend):
    """Spans dropped because the export queue is full, and exports that fail, showed only as one
    rate-limited log line: /metrics counts them (the SDK's own span-pipeline metrics)."""
    env = settings(tmp_path, backend, OtlpHttpReceiver())
    env |= {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"127.0.0.1:{free_port('127.0.0.1')}",  # nothing listens there
        "OTEL_BSP_MAX_QUEUE_SIZE": "4",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "200",
    }
    yaml_body = {"Content-Type": "application/yaml"}
    async with running(tmp_path, **env) as gslb:
        async with httpx.AsyncClient(base_url=gslb.api, timeout=10) as client:
            created = await client.post(COLLECTION, content=EXAMPLE, headers=yaml_body)
            assert created.status_code == 201, created.text
            await eventually(lambda: a_records(gslb.dns, HOST), {"10.0.0.1"})

            async def counted() -> tuple[bool, bool]:
                text = (await client.get("/metrics")).text
                dropped = series(text, "otel_sdk_processor_span_processed_total", error_type="queue_full")
                failed = series(text, "otel_sdk_exporter_span_exported_total", error_type="*")
                return dropped > 0, failed > 0

            await eventually(counted, (True, True), timeout=15)
            text = (await client.get("/metrics")).text
    assert series(text, "otel_sdk_processor_span_queue_capacity") == 4
    # Seconds, with buckets for seconds: exports to a port that refuses take milliseconds.
    assert series(text, "otel_sdk_exporter_operation_duration_seconds_bucket", le="0.1") > 0
