"""The API's HTTP tracing, served by real uvicorn on 127.0.0.1 and called by an *un*instrumented client
(an instrumented one would replace the chosen `traceparent` with its own)."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import APIRouter, FastAPI, Request
from fastapi.staticfiles import StaticFiles
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from app.api.limits import BodyLimitMiddleware
from app.telemetry import carry
from app.telemetry.http import instrument_app, instrument_httpx_client
from tests.support.otlp import OtlpHttpReceiver, tracing_to

TRACE, SPAN = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
CALLER = f"00-{TRACE}-{SPAN}-01"
TRACERESPONSE = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def parse(value: str | None) -> tuple[str, str, int]:
    assert value is not None, "no traceresponse header"
    match = TRACERESPONSE.match(value)
    assert match, value
    assert match[1] != "0" * 32 and match[2] != "0" * 16
    return match[1], match[2], int(match[3], 16)


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[str]:
    """Run `app` under uvicorn on a free loopback port.

    uvicorn binds it itself (port 0): handed a pre-bound socket, it re-creates it without IPPROTO_TCP,
    asyncio then skips TCP_NODELAY and every keep-alive request waits ~40 ms for a delayed ACK.
    """
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    task.result()  # raises why it could not start
                    raise RuntimeError("uvicorn stopped before it started")
                await asyncio.sleep(0.005)
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


def echo_app() -> FastAPI:
    """A downstream service that reports the trace headers it received."""
    app = FastAPI()

    @app.get("/echo")
    async def echo(request: Request) -> dict[str, str | None]:
        return {"traceparent": request.headers.get("traceparent")}

    return app


def api_app(downstream: str) -> FastAPI:
    app = FastAPI()
    client = httpx.AsyncClient(base_url=downstream)

    @app.get("/write")
    async def write() -> dict[str, str]:
        """What a write would record on the object."""
        return carry.annotations_from_context(generation=1)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("provider exploded")

    @app.get("/call")
    async def call() -> dict[str, str | None]:
        response = await client.get("/echo")
        return dict(response.json())

    things = APIRouter(prefix="/things/{group}")

    @things.get("/items/{item}")
    async def item(group: str, item: str) -> dict[str, str]:
        return {"group": group, "item": item}

    @things.post("/items/{item}")
    async def put_item(group: str, item: str, request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    app.include_router(things)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent))
    app.add_middleware(BodyLimitMiddleware, max_bytes=100)
    app.state.client = client
    return app


@pytest.fixture
async def downstream() -> AsyncIterator[str]:
    async with serve(echo_app()) as url:
        yield url


# --- tracing enabled ------------------------------------------------------------------------------


@asynccontextmanager
async def traced_api(
    receiver: OtlpHttpReceiver, downstream: str, endpoint: str | None = None, shutdown_timeout_s: float = 5.0
) -> AsyncIterator[httpx.AsyncClient]:
    with tracing_to(receiver, endpoint=endpoint, shutdown_timeout_s=shutdown_timeout_s) as handle:
        app = api_app(downstream)
        instrument_app(app, tracer_provider=handle.provider)
        instrument_httpx_client(app.state.client, tracer_provider=handle.provider)
        async with serve(app) as url, httpx.AsyncClient(base_url=url) as client:
            yield client
        await app.state.client.aclose()


async def test_the_server_span_continues_the_callers_trace(
    otlp_receiver: OtlpHttpReceiver, downstream: str
) -> None:
    async with traced_api(otlp_receiver, downstream) as client:
        response = await client.get("/write", headers={"traceparent": CALLER, "tracestate": "vendor=1"})
    assert response.status_code == 200
    trace_id, span_id, flags = parse(response.headers.get("traceresponse"))
    assert trace_id == TRACE and flags & 1

    server = await otlp_receiver.wait_for_span("GET /write")
    assert (server.trace_id, server.parent_span_id, server.span_id) == (TRACE, SPAN, span_id)
    assert server.kind == SpanKind.SERVER.value + 1  # OTLP numbers kinds from UNSPECIFIED=0
    # exclude_spans: no internal "http send/receive" spans
    assert [s.name for s in otlp_receiver.by_trace(TRACE)] == ["GET /write"]
    # A write inside the request records the server span, with the caller's tracestate.
    assert response.json() == {
        "k8gb.io/traceparent": f"00-{TRACE}-{span_id}-01",
        "k8gb.io/tracestate": "vendor=1",
        "k8gb.io/traceparent-generation": "1",
    }


@pytest.mark.parametrize(
    "traceparent",
    [
        "garbage",
        f"00-{TRACE}-{SPAN}",  # truncated
        f"00-{'0' * 32}-{SPAN}-01",  # invalid all-zero trace id
        f"00-{TRACE.upper()}-{SPAN}-01",
        None,
    ],
)
async def test_a_malformed_or_missing_header_starts_a_new_trace(
    otlp_receiver: OtlpHttpReceiver, downstream: str, traceparent: str | None
) -> None:
    headers = {"traceparent": traceparent} if traceparent is not None else {}
    async with traced_api(otlp_receiver, downstream) as client:
        response = await client.get("/write", headers=headers)
    assert response.status_code == 200
    trace_id, span_id, flags = parse(response.headers.get("traceresponse"))
    assert trace_id != TRACE.lower() and flags & 1
    server = await otlp_receiver.wait_for_span("GET /write")
    assert (server.trace_id, server.span_id, server.parent_span_id) == (trace_id, span_id, "")


async def test_an_error_response_carries_traceresponse_too(
    otlp_receiver: OtlpHttpReceiver, downstream: str
) -> None:
    async with traced_api(otlp_receiver, downstream) as client:
        response = await client.get("/boom", headers={"traceparent": CALLER})
    assert response.status_code == 500
    trace_id, span_id, _ = parse(response.headers.get("traceresponse"))
    server = await otlp_receiver.wait_for_span("GET /boom")
    assert trace_id == TRACE
    assert (server.trace_id, server.span_id) == (trace_id, span_id)
    assert server.status_code == StatusCode.ERROR.value


ITEM = "/things/{group}/items/{item}"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "name", "route"),
    [
        ("GET", "/things/a/items/b", b"", 200, "GET " + ITEM, ITEM),
        ("DELETE", "/things/a/items/b", b"", 405, "DELETE " + ITEM, ITEM),
        ("POST", "/things/a/items/b", b"x" * 20, 200, "POST " + ITEM, ITEM),
        # refused by a middleware before routing: named by the instrumentation's own matching
        ("POST", "/things/a/items/b", b"x" * 200, 413, "POST " + ITEM, ITEM),
        ("GET", "/openapi.json", b"", 200, "GET /openapi.json", "/openapi.json"),
        # a mount is one route, whatever file is asked for (no unbounded names)
        ("GET", "/static/conftest.py", b"", 200, "GET /static", "/static"),
        ("GET", "/static/a/b/../../conftest.py", b"", 200, "GET /static", "/static"),
        ("GET", "/static/missing.js", b"", 404, "GET /static", "/static"),
        ("GET", "/things/a/items/b/", b"", 307, "GET", None),  # slash redirect: no route
        ("GET", "/nowhere/at/all", b"", 404, "GET", None),
    ],
)
async def test_server_spans_are_named_by_the_route_template(
    otlp_receiver: OtlpHttpReceiver,
    downstream: str,
    method: str,
    path: str,
    body: bytes,
    status: int,
    name: str,
    route: str | None,
) -> None:
    """As opentelemetry-instrumentation-fastapi names them (method and route template, `http.route`),
    though taken from FastAPI's own routing rather than the instrumentation's second matching."""
    async with traced_api(otlp_receiver, downstream) as client:
        request = client.build_request(method, path, content=body or None, headers={"traceparent": CALLER})
        request.url = request.url.copy_with(raw_path=path.encode())  # as sent, `..` included
        response = await client.send(request)
    assert response.status_code == status
    _, span_id, _ = parse(response.headers.get("traceresponse"))
    spans = await otlp_receiver.wait_for(lambda s: any(x.span_id == span_id for x in s))
    server = next(x for x in spans if x.span_id == span_id)
    assert server.name == name
    assert server.attributes.get("http.route") == route


def test_the_instrumentation_does_not_match_routes_a_second_time() -> None:
    """Its default span naming walks every route per request (a tenth of a GET's CPU); ours is swapped
    in. Fails if a new instrumentation version moves its middleware where the swap cannot find it."""
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
    from opentelemetry.sdk.trace import TracerProvider

    from app.telemetry.http import span_details_by_method

    app = FastAPI()
    instrument_app(app, tracer_provider=TracerProvider(), enabled=True)
    layer: object = app.build_middleware_stack()
    found = []
    while layer is not None:
        if isinstance(layer, OpenTelemetryMiddleware):
            found.append(layer.default_span_details)
        layer = getattr(layer, "app", None)
    assert found == [span_details_by_method]


async def test_an_unsampled_caller_is_answered_but_not_recorded(
    otlp_receiver: OtlpHttpReceiver, downstream: str
) -> None:
    async with traced_api(otlp_receiver, downstream) as client:
        response = await client.get("/write", headers={"traceparent": f"00-{TRACE}-{SPAN}-00"})
        marker = await client.get("/write")  # sampled: proves export works
    trace_id, _, flags = parse(response.headers.get("traceresponse"))
    assert trace_id == TRACE and not flags & 1
    await otlp_receiver.wait_for(lambda spans: bool(spans))
    assert otlp_receiver.by_trace(TRACE) == []
    assert otlp_receiver.by_trace(parse(marker.headers.get("traceresponse"))[0])


async def test_outgoing_calls_carry_the_trace_onward(
    otlp_receiver: OtlpHttpReceiver, downstream: str
) -> None:
    async with traced_api(otlp_receiver, downstream) as client:
        response = await client.get("/call", headers={"traceparent": CALLER})
    sent = response.json()["traceparent"]
    spans = await otlp_receiver.wait_for(lambda s: {"GET /call", "GET"} <= {x.name for x in s})
    server = next(s for s in spans if s.name == "GET /call")
    outgoing = next(s for s in spans if s.name == "GET")
    assert outgoing.kind == SpanKind.CLIENT.value + 1
    assert (outgoing.trace_id, outgoing.parent_span_id) == (TRACE, server.span_id)
    assert sent == f"00-{TRACE}-{outgoing.span_id}-01"


async def test_a_collector_that_is_down_fails_no_request(downstream: str) -> None:
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with OtlpHttpReceiver() as unused:
        async with traced_api(unused, downstream, f"127.0.0.1:{port}", shutdown_timeout_s=0.2) as client:
            responses = [await client.get("/write", headers={"traceparent": CALLER}) for _ in range(5)]
    assert [r.status_code for r in responses] == [200] * 5
    assert {parse(r.headers.get("traceresponse"))[0] for r in responses} == {TRACE}
    assert unused.spans == []


# --- tracing disabled -----------------------------------------------------------------------------


@asynccontextmanager
async def untraced_api(downstream: str) -> AsyncIterator[httpx.AsyncClient]:
    app = api_app(downstream)
    instrument_app(app, enabled=False)
    # Disabled means no SDK provider; model it explicitly, as another test may have set a global one.
    instrument_httpx_client(app.state.client, tracer_provider=trace.NoOpTracerProvider())
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as client:
        yield client
    await app.state.client.aclose()


async def test_disabled_passes_the_callers_context_through(downstream: str) -> None:
    async with untraced_api(downstream) as client:
        write = await client.get("/write", headers={"traceparent": CALLER, "tracestate": "vendor=1"})
        call = await client.get("/call", headers={"traceparent": CALLER})
    # No span of its own: it names the caller's span and says it recorded nothing.
    assert write.headers["traceresponse"] == f"00-{TRACE}-{SPAN}-00"
    assert write.json() == {
        "k8gb.io/traceparent": CALLER,
        "k8gb.io/tracestate": "vendor=1",
        "k8gb.io/traceparent-generation": "1",
    }
    assert call.json() == {"traceparent": CALLER}


@pytest.mark.parametrize("headers", [{}, {"traceparent": "garbage"}])
async def test_disabled_without_a_caller_context_still_answers_a_trace_id(
    downstream: str, headers: dict[str, str]
) -> None:
    async with untraced_api(downstream) as client:
        first = await client.get("/write", headers=headers)
        second = await client.get("/write", headers=headers)
    one, two = parse(first.headers.get("traceresponse")), parse(second.headers.get("traceresponse"))
    assert one[0] != two[0]
    assert one[2] == two[2] == 0x02  # random trace id, not sampled
    assert first.json() == {}  # nothing made up is carried onward


# --- headers that are not one caller's context ---------------------------------------------------

OTHER = f"00-{'1' * 32}-{'2' * 16}-01"


@pytest.mark.parametrize("traced", [True, False], ids=["traced", "untraced"])
async def test_a_repeated_traceparent_is_no_callers_context_for_any_reader(
    otlp_receiver: OtlpHttpReceiver, downstream: str, traced: bool
) -> None:
    """traceparent is single-valued: sent twice it is malformed (the W3C test suite expects a new trace).
    The response, the server span, the stamp on the object and outgoing calls must all agree on that,
    not each pick a copy of their own (the server span took the first, `traceresponse` neither)."""
    headers = [("traceparent", CALLER), ("traceparent", OTHER), ("tracestate", "vendor=1")]
    api = traced_api(otlp_receiver, downstream) if traced else untraced_api(downstream)
    async with api as client:
        write = await client.get("/write", headers=headers)
        call = await client.get("/call", headers=headers)
    trace_id, _, _ = parse(write.headers.get("traceresponse"))
    assert trace_id not in (TRACE, "1" * 32)
    for value in (*write.json().values(), call.json()["traceparent"] or ""):
        assert TRACE not in value and "1" * 32 not in value and "vendor" not in value
    if traced:
        server = await otlp_receiver.wait_for_span("GET /write")
        assert (server.trace_id, server.parent_span_id) == (trace_id, "")
    else:
        assert write.json() == {} and call.json() == {"traceparent": None}


async def test_disabled_passes_on_only_the_trace_flags_w3c_defines(downstream: str) -> None:
    """Trace Context: flags other than sampled and random-trace-id are reserved, and vendors MUST set
    them to zero in what they pass on: in `traceresponse`, on the object and to outgoing calls."""
    async with untraced_api(downstream) as client:
        write = await client.get("/write", headers={"traceparent": f"00-{TRACE}-{SPAN}-ff"})
        call = await client.get("/call", headers={"traceparent": f"00-{TRACE}-{SPAN}-ff"})
    assert write.headers["traceresponse"] == f"00-{TRACE}-{SPAN}-02"  # random trace id, not recorded here
    assert write.json()["k8gb.io/traceparent"] == f"00-{TRACE}-{SPAN}-03"
    assert call.json() == {"traceparent": f"00-{TRACE}-{SPAN}-03"}
