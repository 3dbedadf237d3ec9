"""Real pygslb processes for end-to-end tests: `gslb serve` on loopback, stopped by themselves."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import dns.asyncquery
import dns.message
import dns.rcode
import dns.rdatatype
import httpx

from tests.support.ports import free_port as free_port  # re-exported: tests import it from here

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Instance:
    """One `gslb serve` process."""

    env: dict[str, str]
    log_path: Path
    process: asyncio.subprocess.Process | None = None
    new_session: bool = False
    """In a process group of its own, so a test can signal the group (as systemd or `timeout` do)."""
    open_files: tuple[int, int] | None = None
    """RLIMIT_NOFILE (soft, hard) to start it with."""
    _log: object = field(default=None, repr=False)

    @property
    def api(self) -> str:
        scheme = "https" if self.env.get("GSLB_TLS_CERT_FILE") else "http"
        return f"{scheme}://{self.env['API_ADDRESS']}"

    @property
    def dns(self) -> tuple[str, int]:
        host, port = self.env["DNS_ADDRESS"].split(":")
        return host, int(port)

    async def start(self, timeout: float = 20.0) -> None:
        self._log = open(self.log_path, "ab")  # noqa: ASYNC230 - a local file, opened once
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "app",
            "serve",
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=self._log,
            stdin=asyncio.subprocess.DEVNULL,
            start_new_session=self.new_session,
            preexec_fn=self._limit_open_files if self.open_files else None,
        )
        async with httpx.AsyncClient(timeout=1, verify=False) as client:  # readiness only
            deadline = asyncio.get_running_loop().time() + timeout
            while True:
                if self.process.returncode is not None:
                    raise RuntimeError(f"gslb serve exited {self.process.returncode}:\n{self.log()}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.api}/healthz")).status_code == 200:
                        return
                if asyncio.get_running_loop().time() > deadline:
                    raise TimeoutError(f"gslb serve did not start:\n{self.log()}")
                await asyncio.sleep(0.05)

    def _limit_open_files(self) -> None:
        assert self.open_files is not None
        resource.setrlimit(resource.RLIMIT_NOFILE, self.open_files)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:] if self.log_path.exists() else ""

    async def kill(self) -> None:
        if self.process and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()

    async def stop(self, timeout: float = 15.0) -> int | None:
        if self.process and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), timeout)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        if self._log is not None:
            self._log.close()  # type: ignore[attr-defined]
            self._log = None
        return self.process.returncode if self.process else None


def instance_env(tmp: Path, name: str, **settings: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TRACING_", "GSLB_", "CLUSTER_"))
    }
    env.update(
        API_ADDRESS=f"127.0.0.1:{free_port()}",
        DNS_ADDRESS=f"127.0.0.1:{free_port()}",
        GSLB_DATA_DIR=str(tmp / name / "data"),
        LOG_LEVEL="info",
        PYTHONUNBUFFERED="1",
    )
    env.update(settings)
    return env


@contextlib.asynccontextmanager
async def running(tmp: Path, name: str = "gslb", **settings: str) -> AsyncIterator[Instance]:
    (tmp / name).mkdir(parents=True, exist_ok=True)
    instance = Instance(instance_env(tmp, name, **settings), tmp / name / "serve.log")
    await instance.start()
    try:
        yield instance
    finally:
        await instance.stop()


async def query(
    server: tuple[str, int], name: str, rdtype: str = "A", timeout: float = 1.0, **kwargs: object
) -> dns.message.Message:
    message = dns.message.make_query(name, rdtype, **kwargs)  # type: ignore[arg-type]
    return await dns.asyncquery.udp(message, server[0], port=server[1], timeout=timeout)


async def a_records(server: tuple[str, int], name: str) -> set[str] | None:
    """The A targets of `name`, or None for NXDOMAIN/NODATA."""
    response = await query(server, name)
    if response.rcode() != dns.rcode.NOERROR:
        return None
    ips = {rr.address for rrset in response.answer if rrset.rdtype == dns.rdatatype.A for rr in rrset}
    return ips or None


async def eventually(check, expected, timeout: float = 10.0, interval: float = 0.05):
    """Poll `check()` until it returns `expected`; fail with the last value seen."""
    deadline = asyncio.get_running_loop().time() + timeout
    last = None
    while True:
        with contextlib.suppress(Exception):
            last = await check()
            if last == expected:
                return last
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"expected {expected!r}, last saw {last!r}")
        await asyncio.sleep(interval)


@dataclass
class Backend:
    """A tiny real HTTP backend whose health a test switches (200 or 503) or stops."""

    host: str = "127.0.0.1"
    port: int = 0
    status: int = 200
    server: asyncio.Server | None = None

    async def start(self) -> Backend:
        self.server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            reason = "OK" if self.status == 200 else "Service Unavailable"
            writer.write(
                f"HTTP/1.1 {self.status} {reason}\r\nContent-Length: 2\r\n"
                "Connection: close\r\n\r\nok".encode()
            )
            await writer.drain()
        writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None

    async def restart(self) -> None:
        await self.start()


def services_yaml(services: Mapping[str, list[str]], interval: float = 0.2) -> str:
    """A services file: {"ns/name": ["127.0.0.1:port", ...]} with fast HTTP probes."""
    lines = ["services:"]
    for ref, endpoints in services.items():
        namespace, name = ref.split("/")
        lines += [
            f"  - namespace: {namespace}",
            f"    name: {name}",
            f"    endpoints: [{', '.join(repr(e) for e in endpoints)}]",
            f"    probe: {{type: http, path: /, expectedStatus: 200, intervalSeconds: {interval}, "
            f"timeoutSeconds: {max(interval, 1.0)}, successThreshold: 1, failureThreshold: 1}}",
        ]
    return "\n".join(lines) + "\n"


@contextlib.asynccontextmanager
async def backend_and_services(tmp_path: Path, *services: str) -> AsyncIterator[tuple[Backend, Path]]:
    """A live HTTP backend and a services file declaring `services` ("ns/name") on it, for a `gslb serve`
    started with GSLB_SERVICES_FILE; the backend stops after."""
    backend = await Backend().start()
    path = tmp_path / "services.yaml"
    path.write_text(services_yaml({ref: [f"127.0.0.1:{backend.port}"] for ref in services}))
    try:
        yield backend, path
    finally:
        await backend.stop()
