"""Active probes: embedded mode's answer to "is this Service ready?".

One asyncio task per (service, endpoint) probes on its own interval, so a slow endpoint never
delays another. Each endpoint follows Kubernetes readiness rules: it starts not ready, turns ready
after `successThreshold` consecutive passes and back after `failureThreshold` consecutive
failures. A service is healthy while at least one endpoint is ready (k8gb counts a Service healthy
when any endpoint is ready), unhealthy otherwise, notFound when it is not declared.

`state()` answers from memory, so reconcile never waits on the network. `on_change` fires only when
a service's state flips, which lets the controller enqueue the affected Gslbs at once instead of
waiting for the periodic resync. The first probe of every endpoint runs as soon as it is started,
and `start()` returns after that first round (at most FIRST_ROUND_WAIT_S), so a fresh process
publishes real health.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace

import httpx

from app.domain.gslb import NamespacedName
from app.domain.health import ServiceState
from app.health.config import HttpProbe, Probe, ServiceSpec, split_endpoint

log = logging.getLogger(__name__)

#: How long `start()` (and a reload) waits for the first probe of every endpoint; an endpoint still
#: unanswered then is counted as not ready, as every endpoint starts, until its probe says otherwise.
FIRST_ROUND_WAIT_S = 5.0

Sleep = Callable[[float], Awaitable[None]]
OnChange = Callable[[NamespacedName], None]
_Key = tuple[str, str]
_RunnerKey = tuple[str, str, str, Probe]


@dataclass(slots=True)
class EndpointHealth:
    """What is known about one endpoint; a copy is handed out, never the live record."""

    endpoint: str
    ready: bool = False
    successes: int = 0
    failures: int = 0
    probes: int = 0
    last_error: str | None = None


@dataclass(slots=True)
class _Runner:
    service: _Key
    probe: Probe
    health: EndpointHealth
    first_done: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class ProbeManager:
    """Probes every declared endpoint and keeps each service's state; see the module docstring.

    `sleep` is the test seam: the interval wait goes through it, so a test can step probe rounds
    one by one instead of waiting real seconds. `client` is None for a private httpx client
    (no redirects, no proxies from the environment, certificates not verified, as kubelet does).
    """

    def __init__(
        self,
        services: Iterable[ServiceSpec],
        on_change: OnChange,
        client: httpx.AsyncClient | None = None,
        *,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._on_change = on_change
        self._sleep = sleep
        self._own_client = client is None
        self._client = client
        self._services: dict[_Key, ServiceSpec] = {}
        self._runners: dict[_RunnerKey, _Runner] = {}
        self._states: dict[_Key, ServiceState] = {}
        self._running = False
        self._set_services(services)
        # Declared services start unhealthy: nothing has passed a probe yet.
        self._states = dict.fromkeys(self._services, ServiceState.UNHEALTHY)

    # --- reading ------------------------------------------------------------------------------

    def state(self, namespace: str, name: str) -> ServiceState:
        return self._states.get((namespace, name), ServiceState.NOT_FOUND)

    def endpoints(self, namespace: str, name: str) -> list[EndpointHealth]:
        return [replace(r.health) for r in self._runners.values() if r.service == (namespace, name)]

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start probing; returns once every endpoint has been probed once."""
        if self._running:
            return
        if self._client is None:
            self._client = httpx.AsyncClient(
                follow_redirects=False,
                verify=False,
                trust_env=False,
                headers={"User-Agent": "pygslb-probe/1"},
                # No cap on connections: with httpx's default 100, a probe queued behind 100 others (a
                # hundred hanging backends, or simply 400 services) spent its timeout waiting for a
                # connection and failed a healthy endpoint. Each probe's own timeout bounds it.
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=None),
            )
        self._running = True
        await self._launch(list(self._runners.values()))

    async def stop(self) -> None:
        self._running = False
        tasks = [r.task for r in self._runners.values() if r.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for runner in self._runners.values():
            runner.task = None
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    async def reload(self, services: Iterable[ServiceSpec]) -> None:
        """Replace the declared set; unchanged endpoints keep their task and their readiness."""
        before = set(self._services)
        stale, fresh = self._set_services(services)
        for runner in stale:
            if runner.task is not None:
                runner.task.cancel()
        await asyncio.gather(*(r.task for r in stale if r.task is not None), return_exceptions=True)
        if self._running:
            await self._launch(fresh)
        for key in before | set(self._services):
            self._update_state(key)

    # --- internals ----------------------------------------------------------------------------

    def _set_services(self, services: Iterable[ServiceSpec]) -> tuple[list[_Runner], list[_Runner]]:
        """Swap in the new declarations; return the runners to stop and the new ones to start."""
        self._services = {s.key: s for s in services}
        wanted: dict[_RunnerKey, ServiceSpec] = {}
        for spec in self._services.values():
            for endpoint in spec.endpoints:
                wanted[(spec.namespace, spec.name, endpoint, spec.probe)] = spec
        stale = [r for k, r in self._runners.items() if k not in wanted]
        fresh: list[_Runner] = []
        runners: dict[_RunnerKey, _Runner] = {}
        for key, spec in wanted.items():
            runner = self._runners.get(key)
            if runner is None:
                runner = _Runner(service=spec.key, probe=spec.probe, health=EndpointHealth(endpoint=key[2]))
                fresh.append(runner)
            runners[key] = runner
        self._runners = runners
        return stale, fresh

    async def _launch(self, runners: list[_Runner]) -> None:
        """Start the runners; wait for their first probes, at most FIRST_ROUND_WAIT_S: an endpoint that
        hangs for its whole (long) timeout must not hold the API and DNS back that long."""
        for runner in runners:
            runner.task = asyncio.create_task(self._run(runner), name=f"probe {runner.health.endpoint}")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(FIRST_ROUND_WAIT_S):
                await asyncio.gather(*(r.first_done.wait() for r in runners))

    async def _run(self, runner: _Runner) -> None:
        try:
            while True:
                error = await self._check(runner.probe, runner.health.endpoint)
                self._record(runner, error)
                runner.first_done.set()
                await self._sleep(runner.probe.interval_seconds)
        finally:
            runner.first_done.set()

    async def _check(self, probe: Probe, endpoint: str) -> str | None:
        """None when the probe passed, else why it failed."""
        host, port = split_endpoint(endpoint)
        try:
            async with asyncio.timeout(probe.timeout_seconds):
                if isinstance(probe, HttpProbe):
                    return await self._http(probe, host, port)
                _, writer = await asyncio.open_connection(host, port)
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
                return None
        except TimeoutError:
            return f"no answer within {probe.timeout_seconds:g}s"
        except Exception as exc:  # noqa: BLE001 - any failure is a failed probe, never a dead probe task
            return f"{type(exc).__name__}: {exc}".rstrip(": ")

    async def _http(self, probe: HttpProbe, host: str, port: int) -> str | None:
        assert self._client is not None, "start() creates the client"
        netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        url = f"{probe.scheme}://{netloc}{probe.path}"
        async with self._client.stream(
            "GET", url, timeout=probe.timeout_seconds, follow_redirects=False
        ) as resp:
            status = resp.status_code
        return None if status == probe.expected_status else f"HTTP {status}, expected {probe.expected_status}"

    def _record(self, runner: _Runner, error: str | None) -> None:
        health, probe = runner.health, runner.probe
        health.probes += 1
        health.last_error = error
        if error is None:
            health.successes, health.failures = health.successes + 1, 0
            flips = not health.ready and health.successes >= probe.success_threshold
        else:
            health.successes, health.failures = 0, health.failures + 1
            flips = health.ready and health.failures >= probe.failure_threshold
        if not flips:
            return
        health.ready = not health.ready
        namespace, name = runner.service
        log.info(
            "endpoint %s of %s/%s is %s%s",
            health.endpoint,
            namespace,
            name,
            "ready" if health.ready else "not ready",
            f" ({error})" if error else "",
        )
        self._update_state(runner.service)

    def _update_state(self, key: _Key) -> None:
        if key in self._services:
            ready = any(r.health.ready for r in self._runners.values() if r.service == key)
            new = ServiceState.HEALTHY if ready else ServiceState.UNHEALTHY
        else:
            new = ServiceState.NOT_FOUND
        old = self._states.get(key, ServiceState.NOT_FOUND)
        if key in self._services:
            self._states[key] = new
        else:
            self._states.pop(key, None)
        if new == old:
            return
        log.info("service %s/%s is %s (was %s)", key[0], key[1], new.value, old.value)
        try:
            self._on_change(NamespacedName(namespace=key[0], name=key[1]))
        except Exception:
            log.exception("health change callback failed for %s/%s", key[0], key[1])
