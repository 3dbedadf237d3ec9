"""Record the trace of one POST through a real `gslb serve` and print it as a span tree.

    .venv/bin/python scripts/trace_tree.py

Starts a backend, an OTLP receiver and `gslb serve` (tracing on), POSTs examples/gslb-roundrobin.yaml
with a caller's traceparent, waits until DNS answers, then prints every span of that trace with its
duration and the attributes a reader needs. docs/tracing.md shows one such recording.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
import tempfile
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.support.instance import Backend, a_records, eventually, running, services_yaml  # noqa: E402
from tests.support.otlp import OtlpHttpReceiver, ReceivedSpan  # noqa: E402

SHOWN = (
    "http.method",
    "http.route",
    "http.status_code",
    "k8gb.",
    "dns.",
    "peer.",
    "provider.",
    "pygslb.reconcile.trigger",
)


def tree(spans: list[ReceivedSpan], caller_span: str) -> list[str]:
    children: dict[str, list[ReceivedSpan]] = {}
    for span in spans:
        children.setdefault(span.parent_span_id, []).append(span)
    lines = [f"caller span {caller_span} (outside pygslb)"]

    def walk(parent: str, depth: int) -> None:
        for span in children.get(parent, []):
            attrs = ", ".join(
                f"{k}={v}"
                for k, v in sorted(span.attributes.items())
                if k.startswith(SHOWN) and v not in ("", [])
            )
            lines.append(f"{'  ' * depth}└─ {span.name}  [{span.span_id}]  {attrs}")
            walk(span.span_id, depth + 1)

    walk(caller_span, 1)
    return lines


async def main() -> None:
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    backend = await Backend().start()
    with tempfile.TemporaryDirectory() as tmp, OtlpHttpReceiver() as receiver:
        services = Path(tmp) / "services.yaml"
        services.write_text(services_yaml({"test-gslb/frontend-podinfo": [f"127.0.0.1:{backend.port}"]}))
        env = {
            "GSLB_SERVICES_FILE": str(services),
            "CLUSTER_EXPOSED_IPS": "10.0.0.1,10.0.0.2",
            "TRACING_ENABLED": "true",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.host_port,
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }
        async with running(Path(tmp), **env) as gslb:
            async with httpx.AsyncClient(base_url=gslb.api, timeout=10) as client:
                response = await client.post(
                    "/apis/k8gb.io/v1beta1/namespaces/test-gslb/gslbs",
                    content=(ROOT / "examples" / "gslb-roundrobin.yaml").read_text(),
                    headers={
                        "Content-Type": "application/yaml",
                        "traceparent": f"00-{trace_id}-{span_id}-01",
                    },
                )
            await eventually(
                lambda: a_records(gslb.dns, "roundrobin.cloud.example.com"), {"10.0.0.1", "10.0.0.2"}
            )
            await receiver.wait_for(
                lambda spans: any(s.name == "SaveDNSEndpoint" and s.trace_id == trace_id for s in spans)
            )
            await asyncio.sleep(0.5)
        spans = receiver.by_trace(trace_id)
    await backend.stop()
    print(f"POST → {response.status_code}, traceresponse: {response.headers.get('traceresponse')}")
    print(f"trace {trace_id}: {len(spans)} spans")
    print("\n".join(tree(spans, span_id)))


if __name__ == "__main__":
    asyncio.run(main())
