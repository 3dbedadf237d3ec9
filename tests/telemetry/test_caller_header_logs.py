"""What OpenTelemetry's propagators log about a caller's `baggage` and `tracestate` stays bounded: any
caller can send those headers, and a warning that copies them whole floods the log."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from app.telemetry.logs import MAX_CHARS, BoundedWarnings
from tests.support.instance import running

pytestmark = pytest.mark.e2e

#: The log line's own parts (time, level, caller, logger name) and the filter's note fit well within this.
LINE_BOUND = MAX_CHARS + 200
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


async def test_an_oversized_baggage_or_a_bad_tracestate_is_one_short_warning(tmp_path: Path) -> None:
    async with running(tmp_path) as gslb:
        async with httpx.AsyncClient(base_url=gslb.api, timeout=10) as client:
            big = await client.get("/healthz", headers={"baggage": "k=" + "v" * 9000})
            odd = await client.get(
                "/healthz",
                headers={"traceparent": TRACEPARENT, "tracestate": ("vendor=caf\u00e9\u20ac" * 30).encode()},
            )
        assert big.status_code < 500 and odd.status_code < 500
        lines = gslb.log_path.read_text(errors="replace").splitlines()
    baggage = [line for line in lines if "Baggage header" in line]
    tracestate = [line for line in lines if "opentelemetry.trace" in line]
    assert len(baggage) == 1 and " WRN " in baggage[0], lines
    assert len(tracestate) == 1, lines  # it was read twice with tracing off: two lines per request
    assert [len(line) for line in baggage + tracestate if len(line) >= LINE_BOUND] == []
    assert "(cut from 90" in baggage[0]


def test_a_flood_of_warnings_is_held_back_and_counted() -> None:
    now = [0.0]
    bound = BoundedWarnings(max_chars=10, burst=2, window_s=60, clock=lambda: now[0])

    def passes(message: str) -> str | None:
        record = logging.LogRecord(
            "opentelemetry.baggage.propagation", logging.WARNING, "", 0, message, (), None
        )
        return record.getMessage() if bound.filter(record) else None

    assert passes("short") == "short"
    assert passes("x" * 50) == "xxxxxxxxxx... (cut from 50 characters)"
    assert [passes("flood") for _ in range(5)] == [None] * 5
    now[0] = 61.0
    assert passes("again") == "again (5 more such warnings were not logged)"
