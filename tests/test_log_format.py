"""`gslb serve` logs as k8gb's zerolog does. LOG_FORMAT=json is one JSON object per line, whatever a message
holds, with zerolog's fields (`level` warn not WARNING, RFC 3339 UTC `time`, `caller`, `message`, `error` and
`stack` for an exception); it was a printf template that a quote or a newline broke, with tracebacks as raw
lines after it. LOG_FORMAT=simple is zerolog's ConsoleWriter (`INF`, `WRN`, `ERR`), and a newline in a
caller's string (a Gslb's host name) cannot forge a line. A failed reconcile is an error, as
controller-runtime's "Reconciler error"; it was a warning, so alerts on k8gb's error lines never fired."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import signal
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.logformat import ConsoleFormatter, JsonFormatter
from tests.faults.test_store_faults import locked
from tests.support.gslb_factory import gslb_body
from tests.support.instance import a_records, backend_and_services, eventually, running

pytestmark = pytest.mark.e2e

COLLECTION = "/apis/k8gb.io/v1beta1/namespaces/test-gslb/gslbs"
FORGED = "\n2026-11-27 ERROR FAKE"
EVIL_HOST = 'evil"host.cloud.example.com' + FORGED
RFC3339_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
CALLER = re.compile(r"[\w./-]+\.py:\d+")
SIMPLE_LINE = re.compile(rf"({RFC3339_UTC.pattern}) (TRC|DBG|INF|WRN|ERR|FTL) ({CALLER.pattern}) > (.*)")
SETTINGS = {"DNS_ZONES": "example.com:cloud.example.com:30", "CLUSTER_EXPOSED_IPS": "10.0.0.1"}


def _objects(log: str) -> list[dict[str, Any]]:
    objects = []
    for line in log.split("\n")[:-1]:
        entry = json.loads(line)  # fails on the line that is not one JSON object
        assert isinstance(entry, dict), line
        objects.append(entry)
    return objects


def _one(objects: list[dict[str, Any]], text: str) -> dict[str, Any]:
    found = [o for o in objects if text in o["message"]]
    assert len(found) == 1, (text, found)
    return found[0]


async def _garbage_to(api: str) -> None:
    """Bytes that are not HTTP: uvicorn logs a warning about them (in its own format, it used to)."""
    host, port = api.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"\x16\x03\x01 not http\r\n\r\n")
    await writer.drain()
    await reader.read()
    writer.close()


async def test_every_json_line_is_one_zerolog_object(tmp_path: Path) -> None:
    async with backend_and_services(tmp_path, "test-gslb/shop") as (backend, services):
        async with running(tmp_path, LOG_FORMAT="json", GSLB_SERVICES_FILE=str(services), **SETTINGS) as gslb:
            assert gslb.process is not None
            async with httpx.AsyncClient(base_url=gslb.api, timeout=30) as client:
                evil = await client.post(COLLECTION, json=gslb_body("evil", host=EVIL_HOST))
                assert evil.status_code == 201, evil.text
                shop = gslb_body("shop", host="shop.cloud.example.com", service="shop")
                assert (await client.post(COLLECTION, json=shop)).status_code == 201
                await eventually(lambda: a_records(gslb.dns, "shop.cloud.example.com"), {"10.0.0.1"})
                # The store refuses writes: the reconcile that follows the health change fails.
                async with locked(tmp_path / "gslb" / "data"):
                    await backend.stop()
                    await eventually(lambda: _logged(gslb, "retrying in"), True, timeout=20)
            await _garbage_to(gslb.api)
            services.write_text('services: [not "closed\n')
            gslb.process.send_signal(signal.SIGHUP)
            await eventually(lambda: _logged(gslb, "services file not reloaded"), True, timeout=5)
        objects = _objects(gslb.log_path.read_text())

    for entry in objects:
        assert {"level", "time", "caller", "logger", "message"} <= entry.keys(), entry
        assert entry["level"] in {"trace", "debug", "info", "warn", "error", "fatal"}, entry
        assert RFC3339_UTC.fullmatch(entry["time"]) and CALLER.fullmatch(entry["caller"]), entry
    ignored = _one(objects, "hosts outside every load-balanced zone are ignored")
    assert ignored["level"] == "warn" and ignored["message"].endswith(EVIL_HOST)
    assert ignored["caller"].startswith("app/controller/reconcile.py:")
    failed = _one(objects, "retrying in")
    assert failed["level"] == "error" and failed["logger"] == "pygslb.controller", failed
    assert failed["caller"].startswith("app/controller/runner.py:"), failed
    recorded = _one(objects, "could not record the reconcile error in status")
    assert recorded["level"] == "error" and "database is locked" in recorded["error"], recorded
    assert recorded["stack"].startswith("Traceback (most recent call last):\n"), recorded
    assert recorded["stack"].endswith(recorded["error"]), recorded
    reload = _one(objects, "services file not reloaded")
    assert reload["level"] == "error" and "\n" in reload["message"], reload
    invalid = _one(objects, "Invalid HTTP request received")
    assert (invalid["level"], invalid["logger"]) == ("warn", "uvicorn.error"), invalid
    worker = _one(objects, "DNS server listening")  # logged by the DNS worker process
    assert worker["caller"].startswith("app/dnsserver/server.py:"), worker


async def test_simple_lines_have_zerolog_levels_and_cannot_be_forged(tmp_path: Path) -> None:
    async with backend_and_services(tmp_path, "test-gslb/shop") as (_, services):
        async with running(tmp_path, GSLB_SERVICES_FILE=str(services), **SETTINGS) as gslb:
            assert gslb.process is not None
            async with httpx.AsyncClient(base_url=gslb.api, timeout=10) as client:
                evil = await client.post(COLLECTION, json=gslb_body("evil", host=EVIL_HOST))
                assert evil.status_code == 201, evil.text
            await eventually(lambda: _logged(gslb, "ERROR FAKE"), True)
            services.write_text("services: [not closed\n")
            gslb.process.send_signal(signal.SIGHUP)
            await eventually(lambda: _logged(gslb, "services file not reloaded"), True, timeout=5)
        lines = gslb.log_path.read_text().split("\n")[:-1]

    parsed = [SIMPLE_LINE.fullmatch(line) for line in lines]
    assert [line for line, match in zip(lines, parsed, strict=True) if not match] == []
    forged = [m[4] for m in parsed if m and "ERROR FAKE" in m[4]]
    assert forged == [
        "test-gslb/evil (k8gb.io): hosts outside every load-balanced zone are ignored: "
        'evil"host.cloud.example.com\\n2026-11-27 ERROR FAKE logger=pygslb.reconcile'
    ]
    assert [m[2] for m in parsed if m and m[4].startswith("services file not reloaded")] == ["ERR"]
    assert any(m and m[2] == "WRN" for m in parsed) and any(m and m[2] == "INF" for m in parsed)


def _record(message: str, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc else None
    return logging.LogRecord("pygslb", logging.ERROR, __file__, 1, message, None, exc_info)


@pytest.mark.parametrize("separator", ["\n", "\r", "\x85", "\u2028", "\u2029", "\x1b[2K\r", "\ud800"])
def test_no_character_ends_a_line_early(separator: str) -> None:
    """What str.splitlines, a terminal or a log shipper takes for the end of a line is escaped."""
    try:
        raise ValueError(f"bad{separator}2026-11-27T00:00:00Z ERR forged")
    except ValueError as exc:
        caught = exc
    message = f"host a{separator}2026-11-27T00:00:00Z ERR forged"
    line = JsonFormatter().format(_record(message, caught))
    assert line.isascii() and len(line.splitlines()) == 1
    assert json.loads(line)["message"] == message
    assert json.loads(line)["error"] == f"ValueError: bad{separator}2026-11-27T00:00:00Z ERR forged"
    first, *traceback = ConsoleFormatter().format(_record(message, caught)).split("\n")
    assert separator not in first and len(first.splitlines()) == 1 and "\x1b" not in first
    assert all(t.startswith("    ") and len(t.splitlines()) == 1 for t in traceback), traceback


async def _logged(gslb: Any, text: str) -> bool:
    return text in gslb.log_path.read_text(errors="replace")


def test_the_caller_is_the_import_path_also_when_the_checkout_is_on_no_sys_path_entry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`scripts/serve` installs pygslb editable: app/ is imported through a finder, and the caller was the
    whole absolute path of the checkout (`/tmp/serve-j7S8/app/runtime.py:571`)."""
    import app.logformat as logformat

    monkeypatch.setattr(sys, "path", ["/nowhere"])
    logformat._source.cache_clear()
    try:
        assert logformat._source(str(Path(logformat.__file__).parent / "runtime.py")) == "app/runtime.py"
    finally:
        logformat._source.cache_clear()
