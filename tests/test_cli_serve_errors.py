"""`gslb serve` that cannot start says why in one line per problem, naming the setting, and exits non-zero:
no traceback for a mistake in the setup."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.instance import ROOT, free_port

pytestmark = pytest.mark.e2e


def serve(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {
        "PATH": "/usr/bin:/bin",
        "API_ADDRESS": f"127.0.0.1:{free_port()}",
        "DNS_ADDRESS": f"127.0.0.1:{free_port()}",
        "GSLB_DATA_DIR": str(tmp_path / "data"),
    }
    return subprocess.run(
        [sys.executable, "-m", "app", "serve"],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"API_ADDRESS": "127.0.0.1:99999"},
            "error: invalid setting API_ADDRESS: '127.0.0.1:99999': the port must be a number from 0 to "
            "65535",
        ),
        ({"DNS_ADDRESS": "127.0.0.1:dns"}, "error: invalid setting DNS_ADDRESS: '127.0.0.1:dns'"),
        ({"EDGE_DNS_SERVERS": "10.0.0.1:70000"}, "error: invalid setting EDGE_DNS_SERVERS: '10.0.0.1:70000'"),
        ({"DNS_ZONES": "bad"}, "error: invalid setting DNS_ZONES: DNS_ZONES entry 'bad' must be"),
        (
            {"TRACING_ENABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "127.0.0.1:0"},
            "error: invalid setting OTEL_EXPORTER_OTLP_ENDPOINT: OTLP endpoint '127.0.0.1:0': bad port",
        ),
        (
            {"TRACING_ENABLED": "true", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "ftp://collector/v1/traces"},
            "error: invalid setting OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: OTLP endpoint",
        ),
        (
            {"TRACING_ENABLED": "true", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "127.0.0.1:41801"},
            "error: invalid setting OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: OTLP endpoint '127.0.0.1:41801': "
            "must be a URL such as http://host:4318/v1/traces",
        ),
        (
            {
                "TRACING_ENABLED": "true",
                "OTEL_BSP_MAX_QUEUE_SIZE": "5",
                "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "10",
            },
            "error: invalid settings: OTEL_BSP_MAX_EXPORT_BATCH_SIZE, OTEL_BSP_MAX_QUEUE_SIZE: an export "
            "batch of 10 spans cannot exceed the queue of 5",
        ),
        (
            {"TRACING_ENABLED": "true", "OTEL_BSP_MAX_QUEUE_SIZE": "0"},
            "error: invalid setting OTEL_BSP_MAX_QUEUE_SIZE: '0' is not a positive whole number",
        ),
        (
            {"TRACING_ENABLED": "true", "OTEL_EXPORTER_OTLP_TIMEOUT": "10s"},
            "error: invalid setting OTEL_EXPORTER_OTLP_TIMEOUT: '10s' is not a positive whole number of "
            "milliseconds (the standard's unit: 10000 is 10 s)",
        ),
        (
            {"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "0"},
            "error: invalid setting OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: '0' is not a positive whole number of "
            "milliseconds",
        ),
        (
            {"OTEL_EXPORTER_OTLP_TIMEOUT": "2.5"},
            "error: invalid setting OTEL_EXPORTER_OTLP_TIMEOUT: '2.5' is not a positive whole number of "
            "milliseconds",
        ),
        (
            {"TRACING_ENABLED": "true", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"},
            "error: invalid setting OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: Input should be 'http/protobuf' or "
            "'grpc'",
        ),
        (
            {"OTEL_PROPAGATORS": "b3"},
            "error: invalid setting OTEL_PROPAGATORS: 'b3' is not an installed propagator (installed: "
            "baggage, tracecontext; or none)",
        ),
        (
            {"TRACING_ENABLED": "true", "OTEL_PROPAGATORS": "tracecontext,baggage,jaeger"},
            "error: invalid setting OTEL_PROPAGATORS: 'jaeger' is not an installed propagator",
        ),
        (
            {"RFC2136_TSIG_SECRET_FILE": "/nonexistent/tsig"},
            "error: invalid setting RFC2136_TSIG_SECRET_FILE: cannot read /nonexistent/tsig: No such file",
        ),
        (
            {"GSLB_API_TOKEN_FILE": "/"},
            "error: invalid setting GSLB_API_TOKEN_FILE: cannot read /: Is a directory",
        ),
        (
            {"GLUEA_PREFIX": "gslb_ns-"},
            "error: invalid setting GLUEA_PREFIX: letters, digits and '-', starting with a letter or digit",
        ),
        (
            {"GLUEA_PREFIX": "g" * 70},
            "error: invalid settings: GLUEA_PREFIX, CLUSTER_GEO_TAG, EXT_GSLB_CLUSTERS_GEO_TAGS: the glue "
            "name",
        ),
        (
            {"DNS_SERVICE_NAME": "gslb_dns"},
            "error: invalid setting DNS_SERVICE_NAME: a Service name: at most 63 lowercase letters, "
            "digits and '-', starting with a letter",
        ),
        ({"COREDNS_SERVICE_TYPE": "Headless"}, "error: invalid setting COREDNS_SERVICE_TYPE: "),
        (
            {"GEOIP_CIDRS": "10.0.0.0/8=eu,garbage"},
            "error: invalid setting GEOIP_CIDRS: GEOIP_CIDRS entry 'garbage' must be CIDR=tag",
        ),
        (
            {"GEOIP_CIDRS": "10.0.0.0/33=eu"},
            "error: invalid setting GEOIP_CIDRS: GEOIP_CIDRS entry '10.0.0.0/33=eu': '10.0.0.0/33' is not "
            "a network",
        ),
        (
            {"GEOIP_CIDRS": "10.0.1.5/24=eu"},
            "error: invalid setting GEOIP_CIDRS: GEOIP_CIDRS entry '10.0.1.5/24=eu': host bits set, "
            "did you mean 10.0.1.0/24?",
        ),
        (
            {"GEOIP_CIDRS": "10.0.0.0/8=e_u"},
            "error: invalid setting GEOIP_CIDRS: GEOIP_CIDRS entry '10.0.0.0/8=e_u': the tag must be "
            "letters, digits and '-' only",
        ),
        (
            {"GEOIP_CIDRS": "10.0.0.0/8="},
            "error: invalid setting GEOIP_CIDRS: GEOIP_CIDRS entry '10.0.0.0/8=': the tag must be letters",
        ),
        (
            {"EDGE_DNS_SERVERS": "10.0.0.1,::1"},
            "error: invalid setting EDGE_DNS_SERVERS: '::1': IPv6 addresses and URLs are not supported",
        ),
        (
            {"EDGE_DNS_SERVERS": "10.0.0.1,10.0.0.1"},
            "error: invalid setting EDGE_DNS_SERVERS: '10.0.0.1' is listed twice",
        ),
        (
            {"EDGE_DNS_SERVER": "bad_host!"},
            "error: invalid setting EDGE_DNS_SERVER: 'bad_host!:53': not an IPv4",
        ),
        (
            {"DNS_ZONE": "cloud.example.org", "EDGE_DNS_ZONE": "example.org"},
            "error: invalid settings: DNS_ZONE, EDGE_DNS_ZONE: k8gb <= 0.14's single zone is no longer read "
            "(k8gb requires DNS_ZONES too); set DNS_ZONES=example.org:cloud.example.org:30 instead",
        ),
        (
            {"EXTDNS_ENABLED": "true"},
            "error: invalid setting EXTDNS_ENABLED: pygslb does not write the edge delegation through "
            "ExternalDNS; set EDGE_DNS_TYPE to rfc2136, infoblox or none",
        ),
        (
            {"EXTDNS_ENABLED": "true", "INFOBLOX_GRID_HOST": "grid.example.com"},
            "error: invalid settings: EXTDNS_ENABLED, INFOBLOX_GRID_HOST: multiple DNS providers configured "
            "simultaneously (ExternalDNS, infoblox)",
        ),
        (
            {"INFOBLOX_GRID_HOST": "grid.example.com"},
            "error: invalid setting INFOBLOX_WAPI_USERNAME: required with Infoblox",
        ),
        (
            {"INFOBLOX_GRID_HOST": "bad host!", "INFOBLOX_WAPI_USERNAME": "u", "INFOBLOX_WAPI_PASSWORD": "p"},
            "error: invalid setting INFOBLOX_GRID_HOST: 'bad host!' is not a host name or an IP address",
        ),
        (
            {
                "INFOBLOX_GRID_HOST": "grid.example.com",
                "INFOBLOX_WAPI_USERNAME": "u",
                "INFOBLOX_WAPI_PASSWORD": "p",
                "INFOBLOX_WAPI_VERSION": "",
            },
            "error: invalid setting INFOBLOX_WAPI_VERSION: empty",
        ),
        (
            {"NS_RECORD_TTL": "4294967296"},
            "error: invalid setting NS_RECORD_TTL: Input should be less than or equal to 2147483647",
        ),
        (
            {"DNS_ZONES": "example.com:cloud.example.com:99999999999"},
            "error: invalid setting DNS_ZONES: DNS_ZONES entry 'example.com:cloud.example.com:99999999999': "
            "negTTL must be a whole number from 0 to 2147483647",
        ),
    ],
    ids=[
        "api-port",
        "dns-port",
        "edge-port",
        "zones",
        "otlp-port",
        "otlp-traces-scheme",
        "otlp-traces-host-port",
        "otel-bsp-batch-over-queue",
        "otel-bsp-queue-zero",
        "otlp-timeout-unit",
        "otlp-traces-timeout-zero",
        "otlp-timeout-seconds",
        "otlp-traces-protocol",
        "propagators-missing",
        "propagators-one-missing",
        "secret-file-missing",
        "secret-file-directory",
        "glue-prefix",
        "glue-name-too-long",
        "dns-service-name",
        "coredns-service-type",
        "geoip-cidrs-no-tag",
        "geoip-cidrs-bad-prefix",
        "geoip-cidrs-host-bits",
        "geoip-cidrs-bad-tag",
        "geoip-cidrs-empty-tag",
        "edge-ipv6",
        "edge-twice",
        "edge-legacy-host",
        "legacy-single-zone",
        "extdns",
        "multiple-providers",
        "infoblox-no-user",
        "infoblox-bad-host",
        "infoblox-empty-version",
        "ns-ttl-over-32-bits",
        "neg-ttl-over-32-bits",
    ],
)
def test_invalid_settings_are_named(tmp_path: Path, env: dict[str, str], expected: str) -> None:
    result = serve(tmp_path, **env)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(expected), result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr  # one line


async def test_old_and_k8gb_only_settings_are_warned_about_once_at_start(tmp_path: Path) -> None:
    """k8gb's deprecated edge server is used (as k8gb uses it) with its warning; k8gb settings pygslb
    does not read are listed with why; k8gb's 0 for the delegation requeue starts."""
    from tests.support.instance import running

    async with running(
        tmp_path,
        EDGE_DNS_SERVER="127.0.0.1",
        EDGE_DNS_SERVER_PORT="5399",
        METRICS_ADDRESS="0.0.0.0:8080",
        ZONE_DELEGATION_RECOVERY_SECONDS="60",
        ZONE_DELEGATION_RECONCILE_REQUEUE_SECONDS="0",
    ) as gslb:
        log = gslb.log()
    suffix = " logger=pygslb.settings"
    warnings = [line for line in log.splitlines() if " WRN " in line and line.endswith(suffix)]
    assert [line.split(" > ")[1].removesuffix(suffix) for line in warnings] == [
        "EDGE_DNS_SERVER and EDGE_DNS_SERVER_PORT deprecated, use EDGE_DNS_SERVERS instead "
        "(used as EDGE_DNS_SERVERS=127.0.0.1:5399)",
        "ignored k8gb settings: METRICS_ADDRESS (/metrics is served on API_ADDRESS); "
        "ZONE_DELEGATION_RECOVERY_SECONDS (a failed delegation is retried with backoff from 1 s to 60 s)",
    ], log


def test_an_unavailable_propagator_is_json_with_log_format_json(tmp_path: Path) -> None:
    """OTEL_PROPAGATORS is checked before OpenTelemetry's propagate module is imported (it raised at
    import: a 34-line traceback and exit 1), so LOG_FORMAT=json gets its one error object too."""
    result = serve(tmp_path, LOG_FORMAT="json", OTEL_PROPAGATORS="b3")
    assert result.returncode == 2 and result.stderr == "", result.stderr
    (error,) = _json_lines(result.stdout)
    assert (error["level"], error["message"]) == (
        "error",
        "invalid setting OTEL_PROPAGATORS: 'b3' is not an installed propagator (installed: baggage, "
        "tracecontext; or none)",
    ), result.stdout


@pytest.mark.parametrize("tracing", ["false", "true"])
@pytest.mark.parametrize("propagators", ["none", "baggage, tracecontext", "none,b3"])
async def test_installed_propagators_start_and_serve(tmp_path: Path, propagators: str, tracing: str) -> None:
    """`none` (the standard's "no propagation") is accepted and anything after it ignored, as the SDK does;
    with tracing off it failed every request (500) once accepted."""
    import httpx

    from tests.support.instance import running

    async with running(
        tmp_path,
        OTEL_PROPAGATORS=propagators,
        TRACING_ENABLED=tracing,
        OTEL_EXPORTER_OTLP_ENDPOINT="127.0.0.1:9",
    ) as gslb:
        caller = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
        async with httpx.AsyncClient(base_url=gslb.api, timeout=10) as client:
            listed = await client.get("/apis/k8gb.io/v1beta1/namespaces/default/gslbs", headers=caller)
        assert listed.status_code == 200, gslb.log()
        assert listed.headers["traceresponse"].startswith("00-"), listed.headers


async def test_the_start_log_says_whether_and_where_traces_go(tmp_path: Path) -> None:
    """One INFO line, as k8gb logs "OTLP tracing is ON" and its sampling ratio: a wrong endpoint,
    protocol or timeout is seen at start rather than as traces that never arrive."""
    from tests.support.instance import running

    async with running(tmp_path, "off") as off:
        off_log = off.log()
    async with running(
        tmp_path,
        "on",
        TRACING_ENABLED="true",
        OTEL_EXPORTER_OTLP_ENDPOINT="127.0.0.1:9",
        OTEL_EXPORTER_OTLP_TRACES_PROTOCOL="grpc",
        OTEL_EXPORTER_OTLP_TIMEOUT="10000",
        TRACING_SAMPLING_RATIO="0.25",
    ) as on:
        on_log = on.log()
    suffix = " logger=pygslb.telemetry"
    for log, expected in [
        (off_log, "OTLP tracing is off (TRACING_ENABLED=false)"),
        (
            on_log,
            "OTLP tracing is on: grpc to http://127.0.0.1:9, sampling ratio 0.25, export timeout 10 s",
        ),
    ]:
        lines = [line for line in log.splitlines() if line.endswith(suffix)]
        assert [line.split(" > ")[1].removesuffix(suffix) for line in lines] == [expected], log
        assert " INF " in lines[0]


def test_what_the_setup_lacks_is_one_line(tmp_path: Path) -> None:
    missing = serve(tmp_path, GSLB_SERVICES_FILE=str(tmp_path / "services.yaml"))
    assert missing.returncode == 1
    assert f"error: gslb serve cannot start: {tmp_path / 'services.yaml'}: cannot read" in missing.stderr
    assert "Traceback" not in missing.stderr, missing.stderr

    for workers in ("0", "1"):  # served in-process, or by a worker process
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
            taken.bind(("127.0.0.1", 0))
            busy = serve(tmp_path, DNS_ADDRESS=f"127.0.0.1:{taken.getsockname()[1]}", DNS_WORKERS=workers)
        assert busy.returncode == 1
        assert "error: gslb serve cannot start:" in busy.stderr, busy.stderr
        assert "in use" in busy.stderr or "could not bind" in busy.stderr, busy.stderr
        assert "Traceback" not in busy.stderr, busy.stderr


def test_an_error_after_the_start_is_a_crash_not_a_setup_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the start's errors are "cannot start"; an OSError from a running instance keeps its
    traceback (it was reported as "cannot start" whatever the phase)."""
    import app.runtime
    from app.cli import main

    async def serving_then_failing(settings: object) -> None:
        raise ConnectionResetError("peer reset, hours after the start")

    monkeypatch.setenv("GSLB_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(app.runtime, "serve", serving_then_failing)
    with pytest.raises(ConnectionResetError):
        main(["serve"])


def test_a_taken_api_port_is_one_line_naming_api_address(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = serve(tmp_path, API_ADDRESS=f"127.0.0.1:{port}")
    assert busy.returncode == 1, busy.stderr
    assert (
        f"error: gslb serve cannot start: [Errno 98] API_ADDRESS 127.0.0.1:{port}: Address already in use"
        in (busy.stderr)
    ), busy.stderr
    assert "Traceback" not in busy.stderr, busy.stderr


def _json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines()]


def test_with_log_format_json_what_stops_the_start_is_json_on_stdout(tmp_path: Path) -> None:
    """As k8gb's main logs "Can't resolve environment variables" through its logger: one error object
    per problem, on stdout beside the other log lines, where a JSON log pipeline reads. They were plain
    `error:` lines on stderr whatever LOG_FORMAT said."""
    invalid = serve(tmp_path, LOG_FORMAT="json", API_ADDRESS="127.0.0.1:99999", DNS_ADDRESS="127.0.0.1:dns")
    assert invalid.returncode == 2 and invalid.stderr == "", invalid.stderr
    errors = _json_lines(invalid.stdout)
    assert [(e["level"], str(e["message"]).split(":")[0]) for e in errors] == [
        ("error", "invalid setting API_ADDRESS"),
        ("error", "invalid setting DNS_ADDRESS"),
    ], invalid.stdout
    assert all(str(e["caller"]).startswith("app/cli.py:") and e["time"] for e in errors), errors

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = serve(tmp_path, LOG_FORMAT="json", API_ADDRESS=f"127.0.0.1:{port}")
    assert busy.returncode == 1 and busy.stderr == "", busy.stderr
    *_, last = _json_lines(busy.stdout)  # every line parses; the last says why
    assert (last["level"], last["message"]) == (
        "error",
        f"gslb serve cannot start: [Errno 98] API_ADDRESS 127.0.0.1:{port}: Address already in use",
    ), busy.stdout


def test_an_unusable_data_directory_is_one_line(tmp_path: Path) -> None:
    a_file = tmp_path / "afile"
    a_file.write_text("")
    result = serve(tmp_path, GSLB_DATA_DIR=str(a_file))
    assert result.returncode == 1, result.stderr
    assert f"error: gslb serve cannot start: data directory {a_file} is not a directory" in result.stderr
    assert "Traceback" not in result.stderr, result.stderr

    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "gslb.db").write_bytes(bytes(range(256)) * 64)
    result = serve(tmp_path, GSLB_DATA_DIR=str(garbage))
    assert result.returncode == 1, result.stderr
    assert "error: gslb serve cannot start:" in result.stderr and str(garbage / "gslb.db") in result.stderr
    assert "Traceback" not in result.stderr, result.stderr


async def test_a_second_server_on_one_data_directory_is_refused(tmp_path: Path) -> None:
    import asyncio

    from tests.support.instance import running

    async with running(tmp_path, "first") as first:
        data = tmp_path / "first" / "data"
        second = await asyncio.to_thread(serve, tmp_path, GSLB_DATA_DIR=str(data))
        assert second.returncode == 1, second.stderr
        pid = first.process.pid if first.process else None
        assert f"data directory {data} is in use by another gslb serve (pid {pid})" in second.stderr, (
            second.stderr
        )
        assert "Traceback" not in second.stderr, second.stderr
    async with running(tmp_path, "first") as again:  # once the first has stopped, it is free again
        assert again.process is not None and again.process.returncode is None


async def test_sigterm_while_waiting_for_an_unreachable_api_server_stops_at_once(tmp_path: Path) -> None:
    """Kubernetes mode waits for its first lists while the API server does not answer; SIGTERM was ignored
    until then (a pod deleted during an API outage waited out its whole grace period)."""
    from tests.support.instance import instance_env
    from tests.support.kmockapi import write_kubeconfig

    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{free_port()}")  # nobody there
    env = instance_env(
        tmp_path, "gslb", GSLB_MODE="kubernetes", KUBECONFIG=str(kubeconfig), CLUSTER_GEO_TAG="eu"
    )
    (tmp_path / "gslb").mkdir()
    log = tmp_path / "gslb" / "serve.log"
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "app", "serve", cwd=ROOT, env=env, stdout=out, stderr=out
        )
        try:
            async with asyncio.timeout(30):
                while "retrying" not in log.read_text(errors="replace"):  # it is waiting for the API server
                    assert process.returncode is None, log.read_text()
                    await asyncio.sleep(0.1)
            process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(10):
                assert await process.wait() == 0, log.read_text()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert "stopped before start-up finished" in log.read_text()
