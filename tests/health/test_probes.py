"""ProbeManager against real HTTP and TCP backends on 127.0.0.1, stepped round by round."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from app.domain.gslb import NamespacedName
from app.domain.health import ServiceState
from app.health.config import ServiceSpec, parse_services
from app.health.probes import ProbeManager
from tests.support.health_backends import HttpBackend, Stepper, TcpListener

HEALTHY, UNHEALTHY, NOT_FOUND = ServiceState.HEALTHY, ServiceState.UNHEALTHY, ServiceState.NOT_FOUND


def service(name: str, endpoints: list[str], **probe: Any) -> ServiceSpec:
    probe.setdefault("type", "http")
    probe.setdefault("intervalSeconds", 1)
    return parse_services(
        {"services": [{"namespace": "test-gslb", "name": name, "endpoints": endpoints, "probe": probe}]}
    )[0]


class Changes:
    """The on_change callback: records every call."""

    def __init__(self) -> None:
        self.calls: list[NamespacedName] = []

    def __call__(self, ref: NamespacedName) -> None:
        self.calls.append(ref)

    def names(self) -> list[str]:
        return [f"{c.namespace}/{c.name}" for c in self.calls]


@pytest.fixture
def changes() -> Changes:
    return Changes()


Make = Callable[..., ProbeManager]


@pytest.fixture
async def managers(stepper: Stepper, changes: Changes) -> AsyncIterator[Make]:
    """Managers stepped by the stepper, reporting to `changes` unless told otherwise; stopped after."""
    made: list[ProbeManager] = []

    def make(*services: ServiceSpec, on_change: Callable[[NamespacedName], None] = changes) -> ProbeManager:
        manager = ProbeManager(services, on_change, sleep=stepper.sleep)
        made.append(manager)
        return manager

    yield make
    for manager in made:
        await manager.stop()


async def test_http_service_follows_backend_with_failure_threshold(
    http_backend: HttpBackend, stepper: Stepper, changes: Changes, managers: Make
) -> None:
    spec = service("frontend", [http_backend.endpoint], path="/healthz", failureThreshold=2)
    probes = managers(spec)
    assert probes.state("test-gslb", "frontend") == UNHEALTHY  # nothing probed yet

    await probes.start()  # the first round has run when start() returns
    assert probes.state("test-gslb", "frontend") == HEALTHY
    assert changes.names() == ["test-gslb/frontend"]
    assert http_backend.paths == ["/healthz"]

    http_backend.status = 503
    await stepper.step(1)
    assert probes.state("test-gslb", "frontend") == HEALTHY, "one failure is below failureThreshold=2"
    await stepper.step(1)
    assert probes.state("test-gslb", "frontend") == UNHEALTHY
    await stepper.step(1)  # still failing: no new notification
    assert len(changes.calls) == 2
    assert probes.endpoints("test-gslb", "frontend")[0].last_error == "HTTP 503, expected 200"

    http_backend.status = 200
    await stepper.step(1)
    assert probes.state("test-gslb", "frontend") == HEALTHY
    assert changes.names() == ["test-gslb/frontend"] * 3
    assert stepper.intervals and set(stepper.intervals) == {1.0}


async def test_success_threshold_delays_readiness(
    http_backend: HttpBackend, stepper: Stepper, changes: Changes, managers: Make
) -> None:
    http_backend.status = 500
    probes = managers(service("api", [http_backend.endpoint], successThreshold=2))
    await probes.start()
    assert probes.state("test-gslb", "api") == UNHEALTHY
    assert changes.calls == []  # unhealthy from the start is not a change

    http_backend.status = 200
    await stepper.step(1)
    assert probes.state("test-gslb", "api") == UNHEALTHY
    await stepper.step(1)
    assert probes.state("test-gslb", "api") == HEALTHY
    assert changes.names() == ["test-gslb/api"]


async def test_expected_status_and_no_redirects(http_backend: HttpBackend, managers: Make) -> None:
    http_backend.status, http_backend.location = 302, "/elsewhere"
    follows = service("redirected", [http_backend.endpoint])
    expects = parse_services(
        {
            "services": [
                {
                    "namespace": "test-gslb",
                    "name": "expects-302",
                    "endpoints": [http_backend.endpoint],
                    "probe": {"type": "http", "expectedStatus": 302},
                }
            ]
        }
    )[0]
    probes = managers(follows, expects)
    await probes.start()
    assert probes.state("test-gslb", "redirected") == UNHEALTHY
    assert probes.state("test-gslb", "expects-302") == HEALTHY
    assert "/elsewhere" not in http_backend.paths


async def test_stopped_server_counts_as_failure(
    http_backend: HttpBackend, stepper: Stepper, managers: Make
) -> None:
    probes = managers(service("web", [http_backend.endpoint], failureThreshold=1))
    await probes.start()
    assert probes.state("test-gslb", "web") == HEALTHY
    await http_backend.stop()
    await stepper.step(1)
    assert probes.state("test-gslb", "web") == UNHEALTHY
    assert "ConnectError" in (probes.endpoints("test-gslb", "web")[0].last_error or "")
    await http_backend.start()  # same port again
    await stepper.step(1)
    assert probes.state("test-gslb", "web") == HEALTHY


async def test_hanging_server_fails_by_timeout(http_backend: HttpBackend, managers: Make) -> None:
    http_backend.hang = True
    probes = managers(service("slow", [http_backend.endpoint], timeoutSeconds=0.2))
    await probes.start()
    assert probes.state("test-gslb", "slow") == UNHEALTHY
    assert probes.endpoints("test-gslb", "slow")[0].last_error == "no answer within 0.2s"


async def test_tcp_probe_follows_listener(
    tcp_listener: TcpListener, stepper: Stepper, changes: Changes, managers: Make
) -> None:
    spec = service("db", [tcp_listener.endpoint], type="tcp", failureThreshold=2)
    probes = managers(spec)
    await probes.start()
    assert probes.state("test-gslb", "db") == HEALTHY
    await tcp_listener.close()
    await stepper.step(1)
    assert probes.state("test-gslb", "db") == HEALTHY
    await stepper.step(1)
    assert probes.state("test-gslb", "db") == UNHEALTHY
    assert "ConnectionRefused" in (probes.endpoints("test-gslb", "db")[0].last_error or "")
    await tcp_listener.open()
    await stepper.step(1)
    assert probes.state("test-gslb", "db") == HEALTHY
    assert changes.names() == ["test-gslb/db"] * 3


async def test_one_ready_endpoint_is_enough(
    tcp_listener: TcpListener, stepper: Stepper, managers: Make
) -> None:
    closed = TcpListener()
    await closed.open()
    await closed.close()  # a port where nothing listens
    spec = service("pair", [tcp_listener.endpoint, closed.endpoint], type="tcp", failureThreshold=1)
    probes = managers(spec)
    await probes.start()
    assert probes.state("test-gslb", "pair") == HEALTHY
    assert sorted(e.ready for e in probes.endpoints("test-gslb", "pair")) == [False, True]
    await tcp_listener.close()
    await stepper.step(2)
    assert probes.state("test-gslb", "pair") == UNHEALTHY


async def test_undeclared_is_not_found_and_no_endpoints_is_unhealthy(managers: Make) -> None:
    probes = managers(service("empty", []))
    await probes.start()
    assert probes.state("test-gslb", "empty") == UNHEALTHY
    assert probes.state("test-gslb", "other") == NOT_FOUND
    assert probes.state("other-ns", "empty") == NOT_FOUND


async def test_reload_adds_removes_and_keeps_readiness(
    http_backend: HttpBackend,
    tcp_listener: TcpListener,
    stepper: Stepper,
    changes: Changes,
    managers: Make,
) -> None:
    web = service("web", [http_backend.endpoint])
    probes = managers(web)
    await probes.start()
    assert changes.names() == ["test-gslb/web"]
    probed = len(http_backend.paths)

    db = service("db", [tcp_listener.endpoint], type="tcp")
    await probes.reload([web, db])  # web unchanged: keeps its task and readiness
    assert probes.state("test-gslb", "web") == HEALTHY
    assert probes.state("test-gslb", "db") == HEALTHY  # probed at once on reload
    assert changes.names() == ["test-gslb/web", "test-gslb/db"]
    assert len(http_backend.paths) == probed, "an unchanged endpoint is not re-probed by a reload"

    await probes.reload([db])
    assert probes.state("test-gslb", "web") == NOT_FOUND
    assert changes.names()[-1] == "test-gslb/web"
    await stepper.step(1)  # only db's task is left
    assert len(http_backend.paths) == probed


async def test_stop_ends_probing(http_backend: HttpBackend, stepper: Stepper, managers: Make) -> None:
    probes = managers(service("web", [http_backend.endpoint]))
    await probes.start()
    await stepper.parked(1)
    await probes.stop()
    count = len(http_backend.paths)
    await stepper.release()  # were a task still alive, it would probe now
    await asyncio.sleep(0)
    assert len(http_backend.paths) == count
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("probe ")]


async def test_failing_callback_does_not_stop_probing(
    http_backend: HttpBackend, stepper: Stepper, managers: Make
) -> None:
    calls: list[NamespacedName] = []

    def broken(ref: NamespacedName) -> None:
        calls.append(ref)
        raise RuntimeError("enqueue failed")

    probes = managers(service("web", [http_backend.endpoint], failureThreshold=1), on_change=broken)
    await probes.start()
    http_backend.status = 503
    await stepper.step(1)
    assert probes.state("test-gslb", "web") == UNHEALTHY
    assert len(calls) == 2


async def test_real_sleep_notices_a_change(http_backend: HttpBackend, changes: Changes) -> None:
    """Without the stepper: the manager's own interval loop picks up a change by itself."""
    flipped = asyncio.Event()

    def on_change(ref: NamespacedName) -> None:
        changes(ref)
        if len(changes.calls) == 2:
            flipped.set()

    probes = ProbeManager(
        [service("web", [http_backend.endpoint], intervalSeconds=0.02, failureThreshold=1)], on_change
    )
    await probes.start()
    try:
        assert probes.state("test-gslb", "web") == HEALTHY
        http_backend.status = 503
        async with asyncio.timeout(5):
            await flipped.wait()
        assert probes.state("test-gslb", "web") == UNHEALTHY
    finally:
        await probes.stop()


class Hanging:
    """Accepts connections and never answers (a backend that hangs)."""

    async def __aenter__(self) -> str:
        self._held: list[asyncio.StreamWriter] = []

        def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self._held.append(writer)

        self._server = await asyncio.start_server(hold, "127.0.0.1", 0)
        return f"127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc: object) -> None:
        for writer in self._held:
            writer.close()
        self._server.close()


async def test_a_healthy_endpoint_stays_ready_among_many_hanging_ones(
    http_backend: HttpBackend, changes: Changes
):
    """150 HTTP probes hang on a dead backend: the healthy one's probes do not queue behind them (with
    httpx's default pool of 100 connections they waited out their timeout and failed)."""
    async with Hanging() as hanging:
        dead = [service(f"dead-{i}", [hanging], timeoutSeconds=3, intervalSeconds=0.2) for i in range(150)]
        ok = service("ok", [http_backend.endpoint], timeoutSeconds=1, intervalSeconds=0.2, failureThreshold=1)
        manager = ProbeManager([*dead, ok], changes)
        await manager.start()
        try:
            await asyncio.sleep(2.5)  # several rounds of the healthy probe while the others hang
            assert manager.state("test-gslb", "ok") is HEALTHY
            assert "test-gslb/ok" in changes.names()  # became healthy once ...
            assert changes.names().count("test-gslb/ok") == 1  # ... and never flapped
        finally:
            await manager.stop()


async def test_start_does_not_wait_out_a_hanging_endpoints_timeout(
    http_backend: HttpBackend, changes: Changes, monkeypatch: pytest.MonkeyPatch
):
    import app.health.probes as probes

    monkeypatch.setattr(probes, "FIRST_ROUND_WAIT_S", 0.5)
    async with Hanging() as hanging:
        manager = ProbeManager(
            [service("slow", [hanging], timeoutSeconds=60), service("ok", [http_backend.endpoint])], changes
        )
        began = asyncio.get_running_loop().time()
        await manager.start()
        try:
            assert asyncio.get_running_loop().time() - began < 5  # not the hanging probe's 60 s
            assert (
                manager.state("test-gslb", "ok") is HEALTHY
                and manager.state("test-gslb", "slow") is UNHEALTHY
            )
        finally:
            await manager.stop()
