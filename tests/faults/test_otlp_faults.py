"""The OTLP collector is down, then overloaded (503), while Gslbs are written and reconciled.

Tracing must never cost the service: writes keep being acknowledged and reconciled into DNS while
nothing listens on the collector's port, the exporter backs off while the collector answers 503
(its attempts are counted here), spans flow again once it is healthy, and the process still stops
cleanly with the collector gone. Spans made during the outage are dropped (bounded queue), by design.
"""

from __future__ import annotations

import asyncio
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import httpx

from tests.support import fleet, tally
from tests.support.instance import eventually, free_port, running
from tests.support.otlp import SpanStore, _Handler

WINDOW_SECONDS = 4.0
# The exporter waits ~1 s (±20 %) before its second attempt and gives up on a batch after 3 s; the
# next batch starts after the 0.2 s schedule delay: at most ~2.5 attempts a second, never a tight loop.
MAX_ATTEMPTS = 2.5 * WINDOW_SECONDS + 2


class _FlakyHandler(_Handler):
    server: _Server  # type: ignore[assignment]

    def do_POST(self) -> None:
        collector = self.server.store
        collector.attempts += 1
        if collector.overloaded:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._reply(503, b"collector overloaded, try later")
            return
        super().do_POST()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, store: FlakyCollector, port: int) -> None:
        self.store = store
        super().__init__(("127.0.0.1", port), _FlakyHandler)


class FlakyCollector(SpanStore):
    """A real OTLP/HTTP receiver on a fixed port: down (nothing listens), overloaded (503) or up."""

    def __init__(self, port: int) -> None:
        super().__init__(port=port)
        self.attempts = 0
        self.overloaded = False
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._server = _Server(self, self.port)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(5)
            self._server = self._thread = None


async def test_collector_down_then_overloaded_costs_nothing_and_recovers(
    tmp_path: Path, services_file: str
) -> None:
    collector = FlakyCollector(free_port())
    settings = fleet.settings(
        services_file,
        TRACING_ENABLED="true",
        OTEL_EXPORTER_OTLP_ENDPOINT=collector.host_port,
        OTEL_BSP_SCHEDULE_DELAY="200",
    )
    try:
        async with running(tmp_path, **settings) as gslb:
            async with (
                httpx.AsyncClient(base_url=gslb.api, timeout=10) as client,
                fleet.Writer(client, "otlp", pause=0.05) as writer,
            ):
                # Down: nothing listens on the collector's port.
                tally.add("faults", "otlp collector down")
                await asyncio.sleep(WINDOW_SECONDS / 2)
                # Within moments: a dead collector stalls no request and no reconcile.
                acked = list(writer.acked)
                assert acked
                await eventually(lambda: fleet.unanswered(gslb, acked), [], timeout=3)

                # Overloaded: it answers 503; the exporter retries, with backoff.
                collector.overloaded = True
                collector.start()
                tally.add("faults", "otlp collector 503")
                await asyncio.sleep(WINDOW_SECONDS)
                attempts = collector.attempts
                assert 1 <= attempts <= MAX_ATTEMPTS, f"{attempts} exports in {WINDOW_SECONDS}s"
                assert not collector.spans

                # Healthy: spans flow again, including the reconcile of a Gslb written from now on.
                collector.overloaded = False
                mark = len(writer.acked)
                await eventually(lambda: writer.has_acked(mark + 1), True)
                newer = set(writer.acked[mark:])
                await collector.wait_for(
                    lambda spans: any(
                        s.name == "Reconcile" and s.attributes.get("k8gb.gslb.name") in newer for s in spans
                    )
                )
                await writer.stop()
                assert set(writer.statuses) == {201} and not writer.unknown, writer.statuses
                await fleet.check_converged(client, gslb, writer.acked)
            collector.stop()  # and gone again for the shutdown
            assert await gslb.stop() == 0, gslb.log()
    finally:
        collector.stop()
    print(f"otlp: {attempts} export attempts against a 503 collector in {WINDOW_SECONDS}s")
    tally.add("faults", "writes acknowledged during faults", len(writer.acked))
