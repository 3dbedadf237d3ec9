"""The built-in DNS server in worker processes, so a flood of queries uses another core than reconciles.

The main process keeps the authoritative `ZoneTable` (the sinks write into it); every accepted write
is queued for each worker and sent once per event-loop turn as one batch, in order. A worker starts
from a snapshot taken in the same loop turn as it is connected, so it misses nothing and gets nothing
twice, whether it is the first start or a restart. Several workers share the address with
SO_REUSEPORT (the kernel spreads queries over them). NOTIFYs a worker acknowledges come back to
`on_notify` here. A worker that dies or closes its channel is restarted with exponential backoff, and
the main process logs it (a start that fails, even with an OSError from fork, is retried the same
way); `stop()` closes the channels, which ends every worker (and so does the main
process dying: the worker sees its channel close).

Same surface as `DnsServer` where the runtime uses it: `start()`, `stop()`, `host`, `port`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import sys
from collections.abc import Callable

import dns.asyncquery
import dns.exception
import dns.message

from app.dnsserver.channel import ChannelClosed, Notify, Ready, WorkerConfig, encode, receive
from app.dnsserver.geo import GeoSpec
from app.dnsserver.zonetable import ZoneTable, ZoneWrite
from app.logformat import format_in_use

log = logging.getLogger(__name__)

BACKOFF_MIN = 0.1
BACKOFF_MAX = 10.0
HEALTHY_AFTER = 30.0
"""A worker that served this long before dying restarts after the shortest delay again."""
SETTLE = 0.5
"""Seconds a worker's exit waits before it counts as a crash: long enough for this process to begin
stopping when a signal was sent to the whole process group."""
STOP_GRACE = 5.0
MAX_BACKLOG = 64 << 20
"""Bytes of unsent writes a worker may fall behind by before it counts as hung and is replaced."""


class WorkerFailed(RuntimeError):
    """A worker did not come up (it exited, or said nothing in time)."""


class _Worker:
    """One worker process and its channel; `pending` holds the writes not yet sent to it."""

    def __init__(self, index: int, owner: DnsWorkers) -> None:
        self.index = index
        self.owner = owner
        self.process: asyncio.subprocess.Process | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.listener: asyncio.Task[None] | None = None
        self.pending: list[ZoneWrite] = []

    @property
    def connected(self) -> bool:
        return self.writer is not None

    async def launch(self, port: int) -> int:
        """Start the process, hand it the snapshot, wait for Ready; the port it serves on."""
        owner = self.owner
        ours, theirs = socket.socketpair()
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "app.dnsserver.worker",
                str(theirs.fileno()),
                pass_fds=(theirs.fileno(),),
                stdin=asyncio.subprocess.DEVNULL,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        try:
            try:
                reader, writer = await asyncio.open_connection(sock=ours)
            except BaseException:
                ours.close()
                raise
            # Snapshot and connect in one loop turn: every later write is queued for this worker.
            writer.write(encode(owner.config_for(port)))
            self.pending = []
            self.writer = writer
            ready = await asyncio.wait_for(receive(reader), owner.start_timeout)
            if not isinstance(ready, Ready):
                raise WorkerFailed(f"DNS worker {self.index} said {ready!r} instead of Ready")
        except BaseException as exc:
            await self.terminate()
            if isinstance(exc, ChannelClosed | TimeoutError):
                raise WorkerFailed(f"DNS worker {self.index} did not start (see its log above)") from None
            raise
        self.listener = asyncio.create_task(self._listen(reader), name=f"dns-worker-{self.index}")
        return ready.port

    async def _listen(self, reader: asyncio.StreamReader) -> None:
        """NOTIFYs from the worker, until its channel closes."""
        with contextlib.suppress(ChannelClosed):
            while True:
                message = await receive(reader)
                if isinstance(message, Notify) and self.owner.on_notify is not None:
                    try:
                        self.owner.on_notify(message.zone, message.name)
                    except Exception:
                        log.exception("NOTIFY callback failed for %s", message.name)

    async def gone(self) -> str:
        """Wait until the process exits or its channel closes; say which."""
        assert self.process is not None and self.listener is not None
        exited = asyncio.ensure_future(self.process.wait())
        await asyncio.wait([exited, self.listener], return_when=asyncio.FIRST_COMPLETED)
        if not exited.done():  # the channel closes first when a worker dies: give it a moment to be reaped
            await asyncio.wait([exited], timeout=1.0)
        if exited.done():
            return f"exited with code {exited.result()}"
        exited.cancel()
        return "closed its channel"

    def send(self) -> None:
        writer = self.writer
        if writer is None or not self.pending:
            return
        writer.write(encode(self.pending))
        self.pending = []
        if writer.transport.get_write_buffer_size() > self.owner.max_backlog and self.process is not None:
            # A worker that stopped reading would hold every later write in our memory: replace it
            # (the supervisor restarts it from a fresh snapshot).
            log.error("DNS worker %d is not reading its writes: killing it", self.index)
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()

    async def terminate(self, grace: float = 0.0) -> None:
        """Close the channel (the worker exits on EOF), then SIGTERM, then SIGKILL; always reaps."""
        writer, self.writer, self.pending = self.writer, None, []
        if writer is not None:
            writer.close()
        if self.listener is not None:
            self.listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.listener
            self.listener = None
        process, self.process = self.process, None
        if process is None:
            return
        for step in ("wait", "terminate", "kill"):
            if process.returncode is not None:
                break
            if step != "wait":
                with contextlib.suppress(ProcessLookupError):
                    getattr(process, step)()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), grace if step == "wait" else STOP_GRACE)
        if process.returncode is None:
            await process.wait()


class DnsWorkers:
    """Serve `table` on `host:port` from `count` worker processes (see the module docstring)."""

    def __init__(
        self,
        table: ZoneTable,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        count: int = 1,
        on_notify: Callable[[str, str], None] | None = None,
        geo: GeoSpec | None = None,
        tcp_idle_timeout: float = 10.0,
        max_tcp_connections: int = 256,
        start_timeout: float = 20.0,
        max_backlog: int = MAX_BACKLOG,
    ) -> None:
        if count < 1:
            raise ValueError("DnsWorkers needs at least one worker")
        self.table = table
        self.host = host
        self.on_notify = on_notify
        self.geo = geo or GeoSpec()
        self.tcp_idle_timeout = tcp_idle_timeout
        self.max_tcp_connections = max_tcp_connections
        self.start_timeout = start_timeout
        self.max_backlog = max_backlog
        self.restarts = 0
        """Workers restarted after dying (for tests and diagnostics)."""
        self._port = port
        self._workers = [_Worker(i, self) for i in range(count)]
        self._supervisors: list[asyncio.Task[None]] = []
        self._unsubscribe: Callable[[], None] | None = None
        self._flush_scheduled = False
        self._stopping = False

    @property
    def port(self) -> int:
        """The bound port (the real one when 0 was asked for)."""
        return self._port

    @property
    def pids(self) -> list[int]:
        """The running workers' process ids."""
        running = (w.process for w in self._workers)
        return [p.pid for p in running if p is not None and p.returncode is None]

    def config_for(self, port: int) -> WorkerConfig:
        """What a worker starts from: the table as of now."""
        root = logging.getLogger()
        return WorkerConfig(
            host=self.host,
            port=port,
            reuse_port=len(self._workers) > 1,
            snapshot=self.table.snapshot(),
            geo=self.geo,
            log_level=root.getEffectiveLevel(),
            log_format=format_in_use(),
            tcp_idle_timeout=self.tcp_idle_timeout,
            max_tcp_connections=self.max_tcp_connections,
        )

    async def start(self) -> None:
        """Start every worker; return once they serve and one answered a real query."""
        self._unsubscribe = self.table.on_write(self._queue)
        try:
            first, *others = self._workers
            self._port = await first.launch(self._port)
            await asyncio.gather(*(w.launch(self._port) for w in others))
            await self._answers()
        except BaseException:
            await self.stop()
            raise
        self._supervisors = [
            asyncio.create_task(self._supervise(w), name=f"dns-worker-{w.index}-supervisor")
            for w in self._workers
        ]
        log.info("DNS server: %d worker process(es) on %s:%d", len(self._workers), self.host, self._port)

    @property
    def tasks(self) -> list[asyncio.Task[None]]:
        """The supervisors, one per worker: they run until `stop()` (the runtime watches them)."""
        return list(self._supervisors)

    def stopping(self) -> None:
        """From now on a worker that exits is not restarted: the server is on its way down."""
        self._stopping = True

    async def stop(self) -> None:
        self._stopping = True
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for task in self._supervisors:
            task.cancel()
        for task in self._supervisors:
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:  # already reported when it ended; the workers must still be stopped
                log.debug("%s had ended with an error", task.get_name())
        self._supervisors = []
        await asyncio.gather(*(w.terminate(STOP_GRACE) for w in self._workers))

    # --- replication -----------------------------------------------------------------------------

    def _queue(self, write: ZoneWrite) -> None:
        for worker in self._workers:
            if worker.connected:
                worker.pending.append(write)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        """One frame per worker for everything written during the last loop turn."""
        self._flush_scheduled = False
        for worker in self._workers:
            worker.send()

    # --- supervision -----------------------------------------------------------------------------

    async def _supervise(self, worker: _Worker) -> None:
        loop = asyncio.get_running_loop()
        delay = BACKOFF_MIN
        started = loop.time()
        while not self._stopping:
            pid = worker.process.pid if worker.process is not None else None
            reason = await worker.gone() if worker.process is not None else "did not start"
            await worker.terminate()
            if loop.time() - started >= HEALTHY_AFTER:
                delay = BACKOFF_MIN
            # Wait before judging: a stop signal sent to the whole process group (systemd, `timeout`,
            # `kill -- -PGID`) reaches the workers as soon as this process, which then stops them anyway.
            await asyncio.sleep(max(delay, SETTLE))
            if self._stopping:
                return
            log.error("DNS worker %d (pid %s) %s; restarting it", worker.index, pid, reason)
            delay = min(delay * 2, BACKOFF_MAX)
            started = loop.time()
            try:
                await worker.launch(self._port)
            except WorkerFailed as exc:
                log.error("%s", exc)
                continue
            except Exception as exc:  # EAGAIN/EMFILE from fork or socketpair: a failed start, retried
                log.error("DNS worker %d could not be started: %s", worker.index, exc, exc_info=exc)
                continue
            self.restarts += 1
            log.warning("DNS worker %d restarted (pid %d)", worker.index, worker.process.pid)  # type: ignore[union-attr]

    async def _answers(self) -> None:
        """Ask the workers for the first zone's SOA until one answers: only then is the DNS 'started'."""
        zones = self.table.zones
        if not zones:
            return
        host = self.host
        with contextlib.suppress(ValueError):
            if ipaddress.ip_address(host).is_unspecified:
                host = "::1" if ipaddress.ip_address(host).version == 6 else "127.0.0.1"
        query = dns.message.make_query(zones[0].load_balanced_zone, "SOA")
        deadline = asyncio.get_running_loop().time() + self.start_timeout
        while True:
            try:
                await dns.asyncquery.udp(query, host, port=self._port, timeout=1.0)
                return
            except (dns.exception.DNSException, OSError):
                if asyncio.get_running_loop().time() > deadline:
                    raise WorkerFailed(f"the DNS workers do not answer on {host}:{self._port}") from None
