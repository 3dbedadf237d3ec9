"""The composition root: builds one process's parts for its mode, runs them, and stops them in order.

Order on the way up: tracing → store → DNS zone and server → health → controller → API.
On SIGTERM: stop taking requests, finish in-flight reconciles, stop DNS, flush traces, exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import uvicorn
from prometheus_client import CollectorRegistry, ProcessCollector, disable_created_metrics

from app.api.connections import guarded_protocol
from app.api.main import create_app
from app.controller.delegation import DelegationLoop, StaticGlue
from app.controller.embedded import SpecServerSource, StaticExposedIps, ZoneSink
from app.controller.metrics import ControllerMetrics
from app.controller.migration import StoreLegacyMigrator
from app.controller.ports import (
    ExposedIpSource,
    GlueSource,
    HealthSource,
    PeerSource,
    RecordSink,
    ServerSource,
)
from app.controller.reconcile import Reconciler
from app.controller.runner import Controller
from app.dnsserver.geo import GeoLocator, GeoSpec
from app.dnsserver.process import DnsWorkers, WorkerFailed
from app.dnsserver.server import DnsServer
from app.dnsserver.zonetable import ZoneTable
from app.domain.health import ServiceState
from app.fdlimit import raise_open_files_limit
from app.gcfreeze import WarmUp
from app.health.config import ServicesFileError
from app.logformat import install as install_log_format
from app.providers.wrappers import Traced
from app.settings import Settings
from app.stores.base import GslbStore, Unavailable
from app.telemetry.setup import TracingHandle, setup_tracing

if TYPE_CHECKING:
    from app.stores.kube.mode import KubeParts

log = logging.getLogger("pygslb")

KEEP_ALIVE_SECONDS = 30
WARM_UP_MAX_SECONDS = 300.0
WARM_UP_COLLECT_SECONDS = 5.0


class NoServices:
    """Health when no services file is given: every service is NotFound, as k8gb with no Service."""

    def state(self, namespace: str, name: str) -> ServiceState:
        return ServiceState.NOT_FOUND


def configure_logging(settings: Settings) -> None:
    """LOG_LEVEL and LOG_FORMAT as k8gb reads them (app/logformat.py); trace logs as debug."""
    level = {"trace": logging.DEBUG, "warn": logging.WARNING}.get(
        settings.log_level, settings.log_level.upper()
    )
    install_log_format(level, settings.log_format)
    for chatty in ("httpx", "httpcore", "uvicorn.access"):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.getLogger().level))


def check_listen_address(settings: Settings) -> None:
    """Refuse to expose an unauthenticated write API beyond loopback unless told --insecure."""
    host, _ = settings.api_host_port
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    authenticated = settings.api_token() or settings.gslb_mode == "kubernetes"  # kube: TokenReview
    if not loopback and not authenticated and not settings.gslb_insecure:
        raise CannotStart(
            f"refusing to listen on {host} without GSLB_API_TOKEN (or GSLB_API_TOKEN_FILE); "
            "set one, or pass --insecure to accept unauthenticated writes"
        )


def bind_api_socket(host: str, port: int) -> socket.socket:
    """The API's listening socket, bound here rather than by uvicorn: a taken port is an OSError naming
    API_ADDRESS (a "cannot start" line), where uvicorn would log it and exit the process itself."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"API_ADDRESS {host}:{port}: {exc.strerror}") from None
    return sock


def metrics_registry() -> CollectorRegistry:
    """/metrics as a Go controller's read to Prometheus: the process_* series (memory, CPU, open files)
    that generic alerts use, and no `_created` series beside each counter (Go's client has none)."""
    disable_created_metrics()  # type: ignore[no-untyped-call]  # process-wide: counters made from now on
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    return registry


@dataclass
class Runtime:
    """Everything one `gslb serve` process runs; tests build it to run a real instance in-process."""

    settings: Settings
    registry: CollectorRegistry = field(default_factory=metrics_registry)
    tracing: TracingHandle | None = None
    store: GslbStore | None = None
    zone: ZoneTable | None = None
    dns: DnsServer | DnsWorkers | None = None
    health: Any = None
    controller: Controller | None = None
    delegation: DelegationLoop | None = None
    notifier: Any = None
    server: uvicorn.Server | None = None
    extra_tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _closers: list[Any] = field(default_factory=list)
    fatal: asyncio.Event = field(default_factory=asyncio.Event)
    fatal_reason: str = ""
    warm_up: WarmUp = field(default_factory=WarmUp)
    _stopping: bool = False

    async def _lost_leadership(self) -> None:
        """As controller-runtime does: a replica that lost its Lease exits, non-zero, and its restart comes
        back as a follower."""
        log.error("leader election lost: exiting so the next leader rebuilds its queue from a list")
        self.fatal_reason = "leader election lost"
        self.fatal.set()

    def _watch(self, task: asyncio.Task[Any], *, may_end: Callable[[], bool] = lambda: False) -> None:
        """A background task that dies while the server runs stops it, non-zero, as a lost Lease does:
        each loop already turns the failures it expects into retries, so what ends one is a bug, and
        the restart (kubelet, systemd) rebuilds queues, indexes and caches from a fresh list, where
        restarting the task in place would keep whatever it left half done (and could die again in a
        tight loop). The error is logged at once, with its traceback."""

        def ended(task: asyncio.Task[Any]) -> None:
            if self._stopping or task.cancelled():
                return
            exc = task.exception()
            if exc is None and may_end():
                return
            name = task.get_name()
            if exc is None:
                log.error("background task %s ended while the server runs: stopping the server", name)
                self.fatal_reason = f"background task {name} ended"
            else:
                log.error("background task %s failed: stopping the server", name, exc_info=exc)
                self.fatal_reason = f"background task {name} failed: {type(exc).__name__}: {exc}"
            self.fatal.set()

        task.add_done_callback(ended)

    async def start(self) -> None:
        s = self.settings
        open_files = raise_open_files_limit()
        self.warm_up.start()  # see gcfreeze.py: what start-up builds is frozen, not re-scanned
        self.tracing = setup_tracing(s, registry=self.registry)
        metrics = ControllerMetrics(self.registry, namespace=s.pod_namespace)
        self.store = await self._build_store()

        ns_names = {
            z.load_balanced_zone: sorted(
                z.glue_name(s.gluea_prefix, t) for t in [s.cluster_geo_tag, *s.peer_tags]
            )
            for z in s.zones
        }
        # Embedded mode fills the zone by reconciling: until every Gslb has been once, DNS says SERVFAIL
        # rather than deny hosts it is about to serve. (Kubernetes mode lists its DNSEndpoints first.)
        self.zone = ZoneTable(
            s.zones,
            ns_names=ns_names,
            ns_ttl=s.ns_record_ttl,
            geo=await self._build_geo(),
            loading=s.gslb_mode == "embedded" and s.gslb_reconcile,
        )
        zone_sink = ZoneSink(Traced(self.zone), s.zones)
        peers, notifier = self._build_peers()
        self.notifier = notifier
        controller_ref: list[Controller] = []

        def enqueue_service(namespace: str, name: str) -> None:
            if controller_ref:
                controller_ref[0].service_changed(namespace, name)

        kube = None
        servers: ServerSource = SpecServerSource()
        health: HealthSource = NoServices()
        exposed: ExposedIpSource = StaticExposedIps(s.cluster_exposed_ips)
        sink: RecordSink = zone_sink
        if s.gslb_mode == "kubernetes":
            from app.stores.kube.mode import KubeParts

            kube = KubeParts.of(self.store, s)  # type: ignore[arg-type]
            servers, health, exposed = kube.servers, kube.health, kube.exposed
            sink = kube.sink
            if s.dns_address:  # every replica serves the DNSEndpoints, as k8gb's CoreDNS does
                from app.stores.kube.zonefeed import DnsEndpointZoneFeed

                feed = DnsEndpointZoneFeed(kube.store.client, self.zone, s.zones, informer=kube.dnsendpoints)
                await feed.start()
                self._closers.append(feed.stop)
            kube.health.on_change(enqueue_service)
            self.health = kube.health
        elif s.gslb_services_file is not None:
            from app.health.config import aload_services
            from app.health.probes import ProbeManager

            services = await aload_services(s.gslb_services_file)
            self.health = ProbeManager(
                services, on_change=lambda ref: enqueue_service(ref.namespace, ref.name)
            )
            health = self.health
        self.delegation = self._build_delegation(metrics, kube)
        if self.delegation is not None and kube is not None:
            kube.glue.on_change(self.delegation.kick)
            await kube.glue.start()
            self._closers.append(kube.glue.stop)
        reconciler = Reconciler(
            store=kube.reconciler_store if kube is not None else self.store,
            servers=servers,
            health=health,
            exposed=exposed,
            sink=sink,
            geo_tag=s.cluster_geo_tag,
            zones=s.zones,
            metrics=metrics,
            peers=peers,
            notifier=notifier,
            edge_state=self.delegation.state if self.delegation else None,
            migrator=kube.migrator if kube is not None else StoreLegacyMigrator(self.store),
        )
        self.controller = Controller(
            store=kube.reconciler_store if kube is not None else self.store,
            reconciler=reconciler,
            metrics=metrics,
            requeue_seconds=s.reconcile_requeue_seconds,
            workers=s.reconcile_workers,
            peers=peers,
            peer_refresh_seconds=s.peer_refresh_seconds,
        )
        self.controller.on_task = self._watch  # its tasks start now, or when this replica leads
        controller_ref.append(self.controller)
        if self.delegation is not None:
            self.delegation.on_change = self.controller.zone_changed
        if s.dns_address:
            host, port = s.dns_host_port
            if s.dns_workers:  # in processes of their own, so a query flood uses another core
                self.dns = DnsWorkers(
                    self.zone,
                    host,
                    port,
                    count=s.dns_workers,
                    on_notify=self.controller.notified,
                    geo=self._geo_spec(),
                )
            else:
                self.dns = DnsServer(self.zone, host, port, on_notify=self.controller.notified)
        # Independent: the DNS workers' start (a process each) overlaps the health sources' first lists.
        await asyncio.gather(
            *(part.start() for part in (self.dns, self.health) if part is not None),
        )
        if s.gslb_reconcile:
            if kube is not None:
                controller = self.controller
                triggers = kube.triggers(lambda key, reason: controller.queue.add(key, None, reason))
                self._closers.append(triggers.stop)

                async def lead() -> None:
                    await triggers.start()
                    await controller.start()

                if s.gslb_leader_election:
                    self.extra_tasks.append(
                        asyncio.create_task(
                            kube.elector().run(lead, self._lost_leadership), name="leader-election"
                        )
                    )
                else:
                    await lead()
            else:
                await self.controller.start()
        if self.delegation is not None:
            self.extra_tasks.append(asyncio.create_task(self.delegation.run(), name="edge-delegation"))
        self.extra_tasks.append(asyncio.create_task(self._end_warm_up(), name="gc-warm-up"))
        if self.zone.loading:
            self.extra_tasks.append(asyncio.create_task(self._zone_loaded(), name="zone-loaded"))

        authorizer = None
        if kube is not None:  # requests reviewed by the API server (TokenReview + SubjectAccessReview)
            from app.stores.kube.auth import KubeAuthorizer

            authorizer = KubeAuthorizer(
                kube.store.client, reviews_per_second=s.gslb_api_token_reviews_per_second
            )
        app = create_app(
            settings=s,
            store=self.store,
            ready=self._ready,
            metrics_registry=self.registry,
            authorizer=authorizer,
        )
        host, port = s.api_host_port
        # Half the descriptors at most for API clients: the rest stay for probes, peers, providers,
        # the Kubernetes API and DNS, however many connections a client holds open.
        max_connections = min(s.gslb_api_max_connections, max(1, open_files // 2))
        log.debug("API connections at most: %d", max_connections)
        config = uvicorn.Config(
            app,
            http=guarded_protocol(s.gslb_api_header_timeout_seconds, max_connections),
            host=host,
            port=port,
            log_level="warning",
            log_config=None,  # uvicorn's records go through our handler, in LOG_FORMAT, not its own
            lifespan="on",
            proxy_headers=False,
            server_header=False,
            # Longer than clients' own idle expiry (httpx: 5 s, the same as uvicorn's default): a client
            # reusing a connection the server is just closing gets a reset, and loses a POST's answer.
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
            ssl_certfile=str(s.gslb_tls_cert_file) if s.gslb_tls_cert_file else None,
            ssl_keyfile=str(s.gslb_tls_key_file) if s.gslb_tls_key_file else None,
        )
        self.server = uvicorn.Server(config)
        api_socket = bind_api_socket(host, port)
        self.extra_tasks.append(asyncio.create_task(self.server.serve(sockets=[api_socket]), name="uvicorn"))
        while not self.server.started:
            if self.extra_tasks[-1].done():
                self.extra_tasks[-1].result()
                raise RuntimeError("API server stopped during start-up")
            await asyncio.sleep(0.01)
        server = self.server
        for task in self.extra_tasks:
            if task.get_name() == "uvicorn":  # ends on SIGTERM/SIGINT, which it catches before serve() does
                self._watch(task, may_end=lambda: server.should_exit)
            elif task.get_name() in ("gc-warm-up", "zone-loaded"):  # one-shot: done is fine, failed is not
                self._watch(task, may_end=lambda: True)
            else:
                self._watch(task)
        if isinstance(self.dns, DnsWorkers):
            for task in self.dns.tasks:
                self._watch(task)

    def _ready(self) -> bool:
        """Embedded, or the only Kubernetes replica: once every Gslb has been reconciled (the zone is
        whole). With leader election every replica serves API and DNS from the lists it made at start
        (k8gb.md §7), so it is ready once started, leader or follower: a follower is never held back
        from the Services, and a new leader does not drop out of them while it reconciles."""
        s = self.settings
        if not s.gslb_reconcile or (s.gslb_mode == "kubernetes" and s.gslb_leader_election):
            return True
        return bool(self.controller and self.controller.synced)

    async def reload_services(self) -> None:
        """Read GSLB_SERVICES_FILE again and probe what it declares now: endpoints that stay keep their
        readiness, and a service whose health flips reconciles its Gslbs at once. A file that does not
        load is logged and the running declarations are kept."""
        path = self.settings.gslb_services_file
        if path is None or self.settings.gslb_mode != "embedded" or self.health is None:
            log.info("SIGHUP: no services file to reload")
            return
        from app.health.config import ServicesFileError, aload_services

        try:
            services = await aload_services(path)
        except ServicesFileError as exc:
            log.error("services file not reloaded, the previous declarations stay: %s", exc)
            return
        await self.health.reload(services)
        log.info("services file reloaded: %d service(s) from %s", len(services), path)

    async def _zone_loaded(self) -> None:
        """The zone is complete once every Gslb that existed at start has been reconciled once."""
        assert self.controller is not None and self.zone is not None
        await self.controller.wait_synced()
        self.zone.mark_loaded()

    async def _end_warm_up(self) -> None:
        """Start-up ends when every Gslb has been reconciled once (caches, zone and indexes built),
        or after WARM_UP_MAX_SECONDS on a replica that does not reconcile (a follower). Until then a
        full collection every WARM_UP_COLLECT_SECONDS stands in for the automatic ones."""
        reconciling = self.controller is not None and self.settings.gslb_reconcile
        deadline = asyncio.get_running_loop().time() + WARM_UP_MAX_SECONDS
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            if reconciling and self.controller is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.controller.wait_synced(), min(left, WARM_UP_COLLECT_SECONDS))
                    break
            else:
                await asyncio.sleep(min(left, WARM_UP_COLLECT_SECONDS))
            self.warm_up.collect()
        self.warm_up.end()

    def _geo_spec(self) -> GeoSpec:
        s = self.settings
        return GeoSpec(s.geoip_cidrs, s.geoip_database, s.geoip_field)

    async def _build_geo(self) -> GeoLocator | None:
        return await self._geo_spec().build()

    async def _build_store(self) -> GslbStore:
        s = self.settings
        if s.gslb_mode == "kubernetes":
            from app.stores.kube.mode import build_kube_store
            from app.telemetry.http import instrument_aiohttp

            if s.tracing_enabled:
                instrument_aiohttp()  # the Kubernetes client's requests carry traceparent onward
            store: GslbStore = await build_kube_store(s)
        else:
            from app.stores.sqlite import SqliteStore

            store = SqliteStore(s.gslb_data_dir, exclusive=True)
        await store.start()
        return store

    def _build_peers(self) -> tuple[PeerSource | None, Any]:
        s = self.settings
        if not s.peer_tags or not s.edge_servers:
            return None, None
        from app.peers.discovery import PeerDirectory
        from app.peers.notify import PeerNotifier
        from app.peers.query import PeerResolver

        directory = PeerDirectory(s.zones, s.cluster_geo_tag, s.peer_tags, s.gluea_prefix, s.edge_servers)
        return PeerResolver(directory), PeerNotifier(directory)

    def _build_delegation(self, metrics: ControllerMetrics, kube: KubeParts | None) -> DelegationLoop | None:
        s = self.settings
        if s.edge_dns_type == "none":
            return None
        from app.providers.edge import build_edge_provider

        def count_retry(provider: str, operation: str, error: Exception, attempt: int) -> None:
            metrics.provider_retries.labels(provider).inc()

        provider = build_edge_provider(s, registry=self.registry, observer=count_retry)
        glue: GlueSource
        if kube is not None:  # read from the cluster, and followed (stores/kube/glue.py)
            glue = kube.glue
            log.info("the edge delegation's glue: %s", kube.glue.describe())
        else:
            glue = StaticGlue(s.glue_ips, why_none="set DNS_EXPOSED_IPS, CLUSTER_EXPOSED_IPS or DNS_ADDRESS")
            loopback = [ip for ip in s.glue_ips if ipaddress.ip_address(ip).is_loopback]
            if loopback:
                log.warning(
                    "the edge delegation will send resolvers to %s, a loopback address (DNS_ADDRESS's host): "
                    "set DNS_EXPOSED_IPS to the address the edge should give as this cluster's glue",
                    ", ".join(loopback),
                )
        return DelegationLoop(
            provider=provider,
            zones=s.zones,
            own_tag=s.cluster_geo_tag,
            peer_tags=s.peer_tags,
            glue=glue,
            glue_prefix=s.gluea_prefix,
            ns_ttl=s.ns_record_ttl,
            metrics=metrics,
            interval=s.zone_delegation_reconcile_requeue_seconds,
        )

    @property
    def api_url(self) -> str:
        assert self.server is not None
        sock = self.server.servers[0].sockets[0].getsockname()
        scheme = "https" if self.settings.gslb_tls_cert_file else "http"
        return f"{scheme}://{sock[0]}:{sock[1]}"

    @property
    def dns_port(self) -> int:
        assert self.dns is not None
        return self.dns.port

    async def stop(self, grace: float = 10.0) -> None:
        self._stopping = True
        self.warm_up.cancel()
        if isinstance(self.dns, DnsWorkers):
            self.dns.stopping()  # the workers may have had the same signal: their exit is expected now
        if self.server is not None:
            self.server.should_exit = True
        if self.controller is not None:
            await self.controller.stop(grace)
        for task in self.extra_tasks:
            if task.get_name() != "uvicorn":
                task.cancel()
        for task in self.extra_tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, timeout=grace)
        for close in self._closers:
            with contextlib.suppress(Exception):
                await close()
        if self.health is not None:
            await self.health.stop()
        if self.notifier is not None:
            await self.notifier.close()
        if self.dns is not None:
            await self.dns.stop()
        if self.store is not None:
            await self.store.close()
        if self.tracing is not None:
            await self.tracing.ashutdown(timeout_s=min(grace, 5.0))


class CannotStart(Exception):
    """The setup cannot run (a port taken, a file missing, a DNS worker that cannot bind): one line for
    the operator. Errors after the start are crashes and keep their traceback."""


async def serve(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT, then shut down gracefully."""
    try:
        check_listen_address(settings)
    except OSError as exc:
        raise CannotStart(str(exc)) from exc
    runtime = Runtime(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    reloads: set[asyncio.Task[None]] = set()

    def reload_services() -> None:  # SIGHUP, the usual "read your configuration again"
        task = loop.create_task(runtime.reload_services(), name="services-reload")
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, reload_services)
    # A stop signal ends a start that waits (for an API server that does not answer, say): a pod deleted
    # or rolled out meanwhile must not wait out its whole termination grace period.
    starting = asyncio.create_task(runtime.start(), name="start")
    signalled = asyncio.create_task(stop.wait(), name="stop-signal")
    try:
        await asyncio.wait([starting, signalled], return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            log.info("stopped before start-up finished")
            starting.cancel()
            await asyncio.wait([starting])
            await runtime.stop(grace=5.0)
            return
        starting.result()
    except BaseException as exc:
        # A failed start (the API port taken, the API server unreachable) still stops what did start and
        # flushes the traces recorded so far, before the error ends the process.
        if not starting.done():
            starting.cancel()
            await asyncio.wait([starting])
        await runtime.stop(grace=5.0)
        if isinstance(exc, OSError | ServicesFileError | WorkerFailed | Unavailable):
            raise CannotStart(str(exc)) from exc
        raise
    finally:
        signalled.cancel()
    host, port = settings.api_host_port
    log.info(
        "pygslb serving: API http://%s:%d (Swagger UI at /docs), DNS %s, mode %s, geo tag %s",
        host,
        port,
        settings.dns_address or "off",
        settings.gslb_mode,
        settings.cluster_geo_tag,
    )
    fatal = asyncio.create_task(runtime.fatal.wait())
    await asyncio.wait([asyncio.create_task(stop.wait()), fatal], return_when=asyncio.FIRST_COMPLETED)
    log.info("shutting down")
    await runtime.stop()
    if runtime.fatal.is_set() and not stop.is_set():
        raise Stopped(runtime.fatal_reason)


class Stopped(Exception):
    """The instance stopped itself (a lost Lease): the process exits non-zero so it is restarted."""
