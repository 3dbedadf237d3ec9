"""SIGTERM as a container runtime sends it: stop taking requests, finish the reconcile in flight,
flush traces, exit 0 well within the grace period."""

import asyncio
import json
import os
import signal
import socket
import sqlite3
from pathlib import Path

import httpx
import pytest

from tests.support.instance import ROOT, Backend, Instance, eventually, instance_env, running, services_yaml
from tests.support.otlp import OtlpHttpReceiver

pytestmark = pytest.mark.e2e
EXAMPLE = (ROOT / "examples" / "gslb-roundrobin.yaml").read_text()


async def test_sigterm_finishes_inflight_reconcile_and_flushes_traces(tmp_path: Path):
    backend = await Backend().start()
    (tmp_path / "services.yaml").write_text(
        services_yaml({"test-gslb/frontend-podinfo": [f"127.0.0.1:{backend.port}"]})
    )
    # An edge DNS server that never answers makes every reconcile wait on peer discovery (~2 s):
    # the SIGTERM below lands while that reconcile is in flight.
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    with silent, OtlpHttpReceiver() as receiver:
        async with running(
            tmp_path,
            GSLB_SERVICES_FILE=str(tmp_path / "services.yaml"),
            CLUSTER_EXPOSED_IPS="10.0.0.1",
            EXT_GSLB_CLUSTERS_GEO_TAGS="eu,us",
            EDGE_DNS_SERVERS=f"127.0.0.1:{silent.getsockname()[1]}",
            TRACING_ENABLED="true",
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.host_port,
            OTEL_BSP_SCHEDULE_DELAY="30000",  # nothing exported on schedule: only the shutdown flush sends
        ) as gslb:
            async with httpx.AsyncClient(base_url=gslb.api, timeout=10) as client:
                created = await client.post(
                    "/apis/k8gb.io/v1beta1/namespaces/test-gslb/gslbs",
                    content=EXAMPLE,
                    headers={"Content-Type": "application/yaml"},
                )
                assert created.status_code == 201
            await asyncio.sleep(0.3)
            assert gslb.process is not None
            gslb.process.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(gslb.process.wait(), timeout=10)
            assert code == 0, gslb.log()
            async with httpx.AsyncClient(timeout=2) as client:
                with pytest.raises(httpx.ConnectError):
                    await client.get(f"{gslb.api}/healthz")
            data_dir = Path(gslb.env["GSLB_DATA_DIR"])
        names = {s.name for s in receiver.spans}
    await backend.stop()
    assert "Reconcile" in names and "SaveDNSEndpoint" in names, f"traces not flushed on exit: {names}"
    with sqlite3.connect(data_dir / "gslb.db") as db:
        (body,) = db.execute("select body from gslbs where name = 'test-gslb'").fetchone()
    status = json.loads(body).get("status") or {}
    assert status.get("observedGeneration") == 1, "the in-flight reconcile finished and wrote status"


async def test_a_failed_start_stops_what_started_and_exits_cleanly(tmp_path: Path):
    """The API port is taken: the process says so and exits non-zero, after stopping the DNS workers
    it had started and flushing traces through the runtime's own shutdown (no exit-hook traceback)."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port_taken = taken.getsockname()[1]
    (tmp_path / "gslb").mkdir()
    with taken, OtlpHttpReceiver() as receiver:
        env = instance_env(
            tmp_path,
            "gslb",
            API_ADDRESS=f"127.0.0.1:{port_taken}",
            DNS_WORKERS="1",
            TRACING_ENABLED="true",
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.host_port,
        )
        gslb = Instance(env, tmp_path / "gslb" / "serve.log")
        with pytest.raises(RuntimeError, match="exited"):
            await gslb.start(timeout=30)
    assert gslb.process is not None and gslb.process.returncode not in (0, None)
    log = gslb.log()
    assert f"cannot start: [Errno 98] API_ADDRESS 127.0.0.1:{port_taken}: Address already in use" in log
    assert "Traceback" not in log and "Exception ignored" not in log, log
    host, port = gslb.dns

    async def dns_port_free() -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind((host, port))
            except OSError:
                return False
            return True

    assert await eventually(dns_port_free, True, timeout=5), "a DNS worker outlived its server"


async def test_sigterm_to_the_whole_process_group_is_a_clean_stop(tmp_path: Path):
    """systemd (KillMode=control-group), `timeout` and `kill -- -PGID` signal the DNS workers too: that
    is a stop like any other, not a worker crash to report and restart."""
    (tmp_path / "gslb").mkdir()
    gslb = Instance(instance_env(tmp_path, "gslb", DNS_WORKERS="2"), tmp_path / "gslb" / "serve.log")
    gslb.new_session = True
    await gslb.start()
    assert gslb.process is not None
    try:
        os.killpg(gslb.process.pid, signal.SIGTERM)
        code = await asyncio.wait_for(gslb.process.wait(), timeout=15)
    finally:
        await gslb.stop()
    log = gslb.log()
    assert code == 0, log
    assert "shutting down" in log
    assert " ERR " not in log and "restart" not in log, log
