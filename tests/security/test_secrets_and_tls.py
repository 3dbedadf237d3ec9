"""No one let in, nothing leaked: the token guards writes, secrets stay out of logs, status, metrics and
spans, the API refuses to listen beyond loopback unauthenticated, and serves TLS when given a cert."""

import asyncio
import base64
import secrets
import ssl
import subprocess
import sys

import httpx
import pytest

from tests.support.instance import ROOT, Backend, free_port, running, services_yaml
from tests.support.otlp import OtlpHttpReceiver

EXAMPLE = (ROOT / "examples" / "gslb-roundrobin.yaml").read_text()
COLLECTION = "/apis/k8gb.io/v1beta1/namespaces/test-gslb/gslbs"


async def test_secrets_never_appear_in_logs_status_metrics_or_spans(tmp_path):
    token = "tok-" + secrets.token_hex(16)
    tsig = base64.b64encode(secrets.token_bytes(32)).decode()
    (tmp_path / "tsig").write_text(tsig)
    backend = await Backend().start()
    (tmp_path / "services.yaml").write_text(
        services_yaml({"test-gslb/frontend-podinfo": [f"127.0.0.1:{backend.port}"]})
    )
    dead = free_port()  # the RFC2136 server is down: errors get logged and recorded
    with OtlpHttpReceiver() as receiver:
        async with running(
            tmp_path,
            GSLB_API_TOKEN=token,
            GSLB_SERVICES_FILE=str(tmp_path / "services.yaml"),
            CLUSTER_EXPOSED_IPS="10.0.0.1",
            EDGE_DNS_TYPE="rfc2136",
            RFC2136_HOST=f"127.0.0.1:{dead}",
            RFC2136_TSIG_KEYNAME="pygslb-key",
            RFC2136_TSIG_SECRET_FILE=str(tmp_path / "tsig"),
            ZONE_DELEGATION_RECONCILE_REQUEUE_SECONDS="0.5",
            TRACING_ENABLED="true",
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.host_port,
            LOG_LEVEL="debug",
        ) as gslb:
            async with httpx.AsyncClient(base_url=gslb.api, timeout=10) as client:
                headers = {"Content-Type": "application/yaml"}
                assert (await client.post(COLLECTION, content=EXAMPLE, headers=headers)).status_code == 401
                wrong = {**headers, "Authorization": "Bearer " + token[:-1] + "x"}
                assert (await client.post(COLLECTION, content=EXAMPLE, headers=wrong)).status_code == 401
                ok = {**headers, "Authorization": f"Bearer {token}"}
                assert (await client.post(COLLECTION, content=EXAMPLE, headers=ok)).status_code == 201
                assert (await client.get(COLLECTION)).status_code == 200, "reads stay open"
                for _ in range(100):  # until the provider error shows in status
                    status = (await client.get(f"{COLLECTION}/test-gslb")).json().get("status") or {}
                    if any(c["type"] == "EdgeDelegated" for c in status.get("conditions", [])):
                        break
                    await asyncio.sleep(0.1)
                else:
                    pytest.fail(f"edge delegation error never reached status: {status}")
                metrics = (await client.get("/metrics")).text
                everything = (await client.get(COLLECTION)).text
            await receiver.wait_for(lambda spans: any(s.name == "SaveZoneDelegation" for s in spans))
            logs = gslb.log()
        spans = repr(receiver.spans)
    await backend.stop()
    assert "pygslb_provider_errors_total" in metrics
    for secret in (token, tsig):
        for where, text in (("logs", logs), ("status", everything), ("metrics", metrics), ("spans", spans)):
            assert secret not in text, f"a secret leaked into {where}"


def test_refuses_non_loopback_without_token(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "app",
            "serve",
            "--api-address",
            f"0.0.0.0:{free_port()}",
            "--dns-address",
            "",
        ],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "GSLB_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: gslb serve cannot start: refusing to listen on 0.0.0.0")
    assert "GSLB_API_TOKEN" in result.stderr and "--insecure" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


async def test_api_over_tls_when_a_certificate_is_configured(tmp_path):
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    subprocess.run(  # noqa: ASYNC221 - a one-off setup step before any server runs
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    async with running(tmp_path, GSLB_TLS_CERT_FILE=str(cert), GSLB_TLS_KEY_FILE=str(key)) as gslb:
        assert gslb.api.startswith("https://")
        context = ssl.create_default_context(cafile=str(cert))
        async with httpx.AsyncClient(verify=context, timeout=10) as client:
            assert (await client.get(f"{gslb.api}/healthz")).status_code == 200
        async with httpx.AsyncClient(timeout=5) as client:
            with pytest.raises(httpx.HTTPError):
                await client.get(gslb.api.replace("https://", "http://") + "/healthz")
