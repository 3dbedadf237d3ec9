"""A real BIND9 (`named`) on loopback for tests, e2e scenarios and benchmarks.

`Bind9(...)` is an async context manager usable anywhere; `bind9` is the pytest fixture (one fresh
server per test: it starts in a fraction of a second). Zones are primary zones in a temporary
directory, dynamic updates and zone transfers are allowed with the TSIG key only, and the server
stops at exit (terminate, then kill). Tests skip with a clear reason when `named` is not installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import dns.asyncquery
import dns.exception
import dns.message
import dns.rcode
import pytest

from tests.support.ports import free_port

_SBIN = ("/usr/sbin", "/usr/local/sbin")


def find_tool(name: str) -> str | None:
    """`named` and `tsig-keygen` live in sbin, which is not always on PATH."""
    return shutil.which(name) or next((str(Path(d) / name) for d in _SBIN if (Path(d) / name).exists()), None)


@dataclass(frozen=True)
class TsigKey:
    name: str
    secret: str
    algorithm: str = "hmac-sha256"

    def conf(self) -> str:
        return f'key "{self.name}" {{ algorithm {self.algorithm}; secret "{self.secret}"; }};\n'


async def generate_key(name: str = "pygslb-test", algorithm: str = "hmac-sha256") -> TsigKey:
    """A fresh key from BIND's own `tsig-keygen`."""
    tool = find_tool("tsig-keygen")
    if tool is None:
        raise RuntimeError("tsig-keygen is not installed (apt-get install bind9)")
    proc = await asyncio.create_subprocess_exec(
        tool, "-a", algorithm, name, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    match = re.search(r'secret "([^"]+)"', out.decode())
    if proc.returncode != 0 or match is None:
        raise RuntimeError(f"tsig-keygen failed: {err.decode().strip()}")
    return TsigKey(name=name, secret=match.group(1), algorithm=algorithm)


def zone_text(origin: str, *, ns_address: str = "127.0.0.1", records: str = "", ttl: int = 300) -> str:
    """A minimal primary zone: SOA, one in-zone name server with its address, plus `records`."""
    origin = origin.rstrip(".") + "."
    return (
        f"$ORIGIN {origin}\n$TTL {ttl}\n"
        f"@ IN SOA ns1.{origin} hostmaster.{origin} 1 3600 600 86400 30\n"
        f"@ IN NS ns1.{origin}\n"
        f"ns1 IN A {ns_address}\n"
        f"{records}\n"
    )


class Bind9:
    """One `named -g -n 1` serving `zones` ({origin: zone file text}, or origins for minimal zones).

    `host` must be an address of an interface (BIND listens only on those): 127.0.0.1 unless more
    loopback addresses were added with `ip addr add`.
    """

    def __init__(
        self,
        zones: Mapping[str, str] | Iterable[str] = ("example.com",),
        *,
        key: TsigKey | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        workdir: Path | None = None,
        options: str = "",
        start_timeout: float = 15.0,
    ) -> None:
        if isinstance(zones, Mapping):
            self.zones = {o.rstrip(".").lower(): text for o, text in zones.items()}
        else:
            self.zones = {o.rstrip(".").lower(): zone_text(o, ns_address=host) for o in zones}
        self.key = key
        self.host = host
        self.port = port or free_port(host)
        self.options = options
        self.start_timeout = start_timeout
        self._workdir = workdir
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._log: object | None = None

    @property
    def workdir(self) -> Path:
        if self._workdir is None:
            raise RuntimeError("Bind9 is not started")
        return self._workdir

    @property
    def log_path(self) -> Path:
        return self.workdir / "named.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    def config(self) -> str:
        assert self.key is not None
        directory = self.workdir
        zones = "".join(
            f'zone "{origin}" {{ type primary; file "{origin}.db"; '
            f'allow-update {{ key "{self.key.name}"; }}; allow-transfer {{ key "{self.key.name}"; }}; }};\n'
            for origin in self.zones
        )
        return (
            "options {\n"
            f'  directory "{directory}";\n'
            "  pid-file none;\n"
            f'  session-keyfile "{directory}/session.key";\n'
            f'  managed-keys-directory "{directory}";\n'
            f"  listen-on port {self.port} {{ {self.host}; }};\n"
            "  listen-on-v6 { none; };\n"
            "  recursion no;\n  dnssec-validation no;\n  notify no;\n"
            f"  {self.options}\n"
            "};\ncontrols { };\n" + self.key.conf() + zones
        )

    async def start(self) -> Bind9:
        named = find_tool("named")
        if named is None:
            raise RuntimeError("named is not installed (apt-get install bind9)")
        if self.key is None:
            self.key = await generate_key()
        if self._workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="bind9-")
            self._workdir = Path(self._tmp.name)
        for origin, text in self.zones.items():
            (self.workdir / f"{origin}.db").write_text(text)
        conf = self.workdir / "named.conf"
        conf.write_text(self.config())
        log = self.log_path.open("wb")
        self._log = log
        self._proc = await asyncio.create_subprocess_exec(
            named, "-g", "-n", "1", "-c", str(conf.resolve()), stdout=log, stderr=log
        )
        try:
            await self._wait_ready()
        except BaseException:
            await self.stop()
            raise
        return self

    async def _wait_ready(self) -> None:
        deadline = asyncio.get_running_loop().time() + self.start_timeout
        pending = set(self.zones)
        while pending:
            if not self.running:
                raise RuntimeError(f"named exited during start-up:\n{self.log()}")
            if "not loaded due to errors" in self.log():
                raise RuntimeError(f"named could not load {sorted(pending)}:\n{self.log()}")
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(f"named did not answer SOA for {sorted(pending)}:\n{self.log()}")
            for origin in list(pending):
                with contextlib.suppress(dns.exception.Timeout, OSError):
                    query = dns.message.make_query(origin + ".", "SOA")
                    answer = await dns.asyncquery.udp(query, self.host, timeout=0.2, port=self.port)
                    if answer.rcode() == dns.rcode.NOERROR and answer.answer:
                        pending.discard(origin)
            if pending:
                await asyncio.sleep(0.05)

    async def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self._log is not None:
            self._log.close()  # type: ignore[attr-defined]
            self._log = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
            self._workdir = None

    async def __aenter__(self) -> Bind9:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


def require_named() -> None:
    if find_tool("named") is None or find_tool("tsig-keygen") is None:
        pytest.skip("BIND9 is not installed here (named/tsig-keygen missing; apt-get install bind9)")


@pytest.fixture
async def bind9() -> AsyncIterator[Bind9]:
    """A fresh BIND9 serving example.com (updates and transfers with its TSIG key `bind9.key`)."""
    require_named()
    async with Bind9(["example.com"]) as server:
        yield server
