"""DNS served from worker processes: real children, real UDP/TCP queries, the main table as the source.

Each test watches what a DNS client sees: the workers answer what the main process's table holds,
from a snapshot at (re)start and from the writes replicated after it, geo included; NOTIFY reaches
the main process; a killed worker comes back; no worker outlives `stop()`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import logging
import os
import signal
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import dns.asyncquery
import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from app.dnsserver.geo import GeoSpec
from app.dnsserver.process import DnsWorkers, WorkerFailed
from app.dnsserver.zonetable import ZoneTable
from app.domain.endpoint import Changes, Endpoint
from tests.support.instance import a_records, eventually

from .conftest import GEO, NS_NAMES, ZONE, Notifications
from .test_server import _notify

pytestmark = pytest.mark.timeout(60)

NEW = Endpoint(f"new.{ZONE}", ("10.9.9.9",))


def alive(pid: int) -> bool:
    """Whether a process (not a zombie) with this id exists."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


async def start(table: ZoneTable, notifications: Notifications, count: int = 1) -> DnsWorkers:
    workers = DnsWorkers(
        table,
        "127.0.0.1",
        0,
        count=count,
        on_notify=lambda zone, name: notifications.append((zone, name)),
        geo=GeoSpec(cidrs=GEO),
    )
    await workers.start()
    return workers


@pytest.fixture
async def workers(table: ZoneTable, notifications: Notifications) -> AsyncIterator[DnsWorkers]:
    running = await start(table, notifications)
    try:
        yield running
    finally:
        await running.stop()


async def ask(
    workers: DnsWorkers, name: str, rdtype: str = "A", *, tcp: bool = False, **kwargs: object
) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, **kwargs)  # type: ignore[arg-type]
    if tcp:
        return await dns.asyncquery.tcp(query, "127.0.0.1", port=workers.port, timeout=3)
    return await dns.asyncquery.udp(query, "127.0.0.1", port=workers.port, timeout=3)


def addresses(response: dns.message.Message) -> set[str]:
    return {rdata.to_text() for rrset in response.answer for rdata in rrset}


async def serial(workers: DnsWorkers) -> int:
    (soa,) = (await ask(workers, ZONE, "SOA")).answer
    return int(soa[0].serial)


@pytest.mark.parametrize("tcp", [pytest.param(False, id="udp"), pytest.param(True, id="tcp")])
async def test_worker_starts_from_a_snapshot_of_the_main_table(
    workers: DnsWorkers, table: ZoneTable, tcp: bool
) -> None:
    assert workers.pids and all(pid != os.getpid() for pid in workers.pids)
    assert addresses(await ask(workers, f"app.{ZONE}", tcp=tcp)) == {"10.0.0.1", "10.0.0.2", "10.0.0.3"}
    assert addresses(await ask(workers, ZONE, "NS", tcp=tcp)) == {f"{n}." for n in NS_NAMES}
    assert (await ask(workers, f"nope.{ZONE}", tcp=tcp)).rcode() == dns.rcode.NXDOMAIN
    assert await serial(workers) == table.serial(ZONE)


async def test_writes_in_the_main_table_are_answered_by_the_worker(
    workers: DnsWorkers, table: ZoneTable
) -> None:
    await table.apply(ZONE, Changes(create=(NEW,)))
    await eventually(lambda: a_records(("127.0.0.1", workers.port), NEW.dns_name), {"10.9.9.9"})
    moved = Endpoint(NEW.dns_name, ("10.9.9.8", "10.9.9.7"))
    await table.apply(ZONE, Changes(update_old=(NEW,), update_new=(moved,)))
    await eventually(lambda: a_records(("127.0.0.1", workers.port), NEW.dns_name), {"10.9.9.8", "10.9.9.7"})
    table.set_ns_names(ZONE, ["gslb-ns-za-cloud.example.com"])
    await table.apply(ZONE, Changes(delete=(moved,)))
    await eventually(lambda: a_records(("127.0.0.1", workers.port), NEW.dns_name), None)
    assert addresses(await ask(workers, ZONE, "NS")) == {"gslb-ns-za-cloud.example.com."}
    assert await serial(workers) == table.serial(ZONE)


async def test_a_burst_of_writes_arrives_whole_and_in_order(workers: DnsWorkers, table: ZoneTable) -> None:
    """Create, update and delete the same names many times in one loop turn: only order gets it right."""
    for round_ in range(50):
        batch = [Endpoint(f"burst-{i}.{ZONE}", (f"10.8.{round_}.{i + 1}",)) for i in range(20)]
        table.apply_now(ZONE, Changes(create=tuple(batch)))
        if round_ < 49:
            table.apply_now(ZONE, Changes(delete=tuple(batch)))
    await eventually(lambda: serial(workers), table.serial(ZONE))
    for i in (0, 7, 19):
        assert await a_records(("127.0.0.1", workers.port), f"burst-{i}.{ZONE}") == {f"10.8.49.{i + 1}"}


async def test_geo_order_is_computed_in_the_worker(workers: DnsWorkers) -> None:
    us = await ask(workers, f"geo.{ZONE}", use_edns=0, options=[dns.edns.ECSOption("10.20.7.0", 24)])
    assert addresses(us) == {"10.20.0.5"}
    eu = await ask(workers, f"geo.{ZONE}", use_edns=0, options=[dns.edns.ECSOption("10.10.7.0", 24)])
    assert addresses(eu) == {"10.10.0.5", "10.10.0.6"}


async def test_notify_received_by_the_worker_reaches_the_main_process(
    workers: DnsWorkers, notifications: Notifications
) -> None:
    response = await dns.asyncquery.udp(
        _notify(f"LocalTargets-App.{ZONE}"), "127.0.0.1", port=workers.port, timeout=3
    )
    assert response.rcode() == dns.rcode.NOERROR
    await eventually(lambda: asyncio.sleep(0, list(notifications)), [(ZONE, f"localtargets-app.{ZONE}")])


async def test_killed_worker_is_restarted_from_a_fresh_snapshot(
    workers: DnsWorkers, table: ZoneTable, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "app.dnsserver.process")
    (victim,) = workers.pids
    os.kill(victim, signal.SIGKILL)
    await eventually(lambda: asyncio.sleep(0, victim in workers.pids), False)
    await table.apply(ZONE, Changes(create=(NEW,)))  # written while no worker runs
    await eventually(lambda: a_records(("127.0.0.1", workers.port), NEW.dns_name), {"10.9.9.9"})
    assert workers.restarts == 1 and len(workers.pids) == 1 and not alive(victim)
    assert await serial(workers) == table.serial(ZONE)
    logged = caplog.text
    assert f"DNS worker 0 (pid {victim}) exited with code -9; restarting" in logged
    assert "DNS worker 0 restarted" in logged


async def test_a_restart_that_cannot_fork_is_retried(
    workers: DnsWorkers, table: ZoneTable, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EAGAIN from fork (a full process table) ended the supervisor: with one worker, DNS for good."""
    caplog.set_level(logging.INFO, "app.dnsserver.process")
    spawn = asyncio.create_subprocess_exec
    refusals = [OSError(errno.EAGAIN, "Resource temporarily unavailable")] * 2

    async def busy_system(*args: Any, **kwargs: Any) -> asyncio.subprocess.Process:
        if refusals:
            raise refusals.pop()
        return await spawn(*args, **kwargs)

    monkeypatch.setattr(asyncio, "create_subprocess_exec", busy_system)
    (victim,) = workers.pids
    os.kill(victim, signal.SIGKILL)
    await eventually(lambda: asyncio.sleep(0, refusals), [], timeout=10)
    await table.apply(ZONE, Changes(create=(NEW,)))
    await eventually(lambda: a_records(("127.0.0.1", workers.port), NEW.dns_name), {"10.9.9.9"}, timeout=15)
    assert workers.restarts == 1 and len(workers.pids) == 1
    assert (
        caplog.text.count("DNS worker 0 could not be started: [Errno 11] Resource temporarily unavailable")
        == 2
    )


async def test_stop_stops_the_workers_of_a_supervisor_that_failed(
    table: ZoneTable, notifications: Notifications, monkeypatch: pytest.MonkeyPatch
) -> None:
    """stop() re-raised a supervisor's error, skipping the rest of the shutdown: the workers ran on."""

    async def broken(self: object) -> str:
        raise RuntimeError("injected")

    monkeypatch.setattr("app.dnsserver.process._Worker.gone", broken)
    workers = await start(table, notifications, count=2)
    pids = workers.pids
    await eventually(lambda: asyncio.sleep(0, all(t.done() for t in workers.tasks)), True)
    await workers.stop()
    assert workers.pids == [] and not any(alive(p) for p in pids)


async def test_stop_leaves_no_worker_behind(table: ZoneTable, notifications: Notifications) -> None:
    workers = await start(table, notifications, count=2)
    pids = workers.pids
    assert len(pids) == 2 and all(alive(p) for p in pids)
    await workers.stop()
    assert workers.pids == [] and not any(alive(p) for p in pids)
    with pytest.raises(dns.exception.Timeout):
        await dns.asyncquery.udp(
            dns.message.make_query(f"app.{ZONE}", "A"), "127.0.0.1", port=workers.port, timeout=0.5
        )


async def test_several_workers_share_the_port_and_each_follows_the_table(
    table: ZoneTable, notifications: Notifications
) -> None:
    workers = await start(table, notifications, count=2)
    try:
        await table.apply(ZONE, Changes(create=(NEW,)))
        server = ("127.0.0.1", workers.port)
        # Each query from a new source port: the kernel spreads them over both workers.
        await eventually(
            lambda: asyncio.gather(*(a_records(server, NEW.dns_name) for _ in range(40))),
            [{"10.9.9.9"}] * 40,
        )
        first, second = workers.pids
        os.kill(first, signal.SIGKILL)
        await eventually(lambda: asyncio.sleep(0, len(workers.pids) == 2 and first not in workers.pids), True)
        answers = await asyncio.gather(*(a_records(server, NEW.dns_name) for _ in range(40)))
        assert answers == [{"10.9.9.9"}] * 40 and second in workers.pids
    finally:
        await workers.stop()


async def test_start_fails_clearly_when_the_address_is_taken(
    table: ZoneTable, notifications: Notifications
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        workers = DnsWorkers(table, "127.0.0.1", taken.getsockname()[1], start_timeout=10)
        with pytest.raises(WorkerFailed, match="did not start"):
            await workers.start()
    assert workers.pids == []


async def test_a_worker_that_stops_reading_is_replaced(
    table: ZoneTable, notifications: Notifications, caplog: pytest.LogCaptureFixture
) -> None:
    workers = DnsWorkers(table, "127.0.0.1", 0, geo=GeoSpec(cidrs=GEO), max_backlog=1)
    await workers.start()
    try:
        (frozen,) = workers.pids
        os.kill(frozen, signal.SIGSTOP)  # alive, but reads nothing: its channel backs up
        for round_ in range(200):
            batch = tuple(Endpoint(f"flood-{round_}-{i}.{ZONE}", ("10.7.0.1",)) for i in range(50))
            table.apply_now(ZONE, Changes(create=batch))
            await asyncio.sleep(0)  # one batch per loop turn
        await eventually(lambda: a_records(("127.0.0.1", workers.port), f"flood-199-49.{ZONE}"), {"10.7.0.1"})
        assert frozen not in workers.pids and not alive(frozen)
        assert "DNS worker 0 is not reading its writes: killing it" in caplog.text
    finally:
        await workers.stop()


async def test_a_loading_table_says_servfail_until_marked_loaded(
    table: ZoneTable, notifications: Notifications
) -> None:
    """A restarted embedded instance starts `loading`: its workers answer SERVFAIL (not authoritative)
    for names in its zones, never an NXDOMAIN resolvers would cache, until the main table says the
    records are complete; then the same names answer from the records."""
    loading = ZoneTable.from_snapshot(dataclasses.replace(table.snapshot(), loading=True))
    workers = await start(loading, notifications)
    try:
        for name in (f"app.{ZONE}", f"nope.{ZONE}"):
            response = await ask(workers, name)
            assert response.rcode() == dns.rcode.SERVFAIL and not response.flags & dns.flags.AA
        assert (await ask(workers, "example.net")).rcode() == dns.rcode.REFUSED  # not ours: as ever
        loading.mark_loaded()
        assert await eventually(lambda: _rcode(workers, f"nope.{ZONE}"), dns.rcode.NXDOMAIN, timeout=5)
        assert addresses(await ask(workers, f"app.{ZONE}")) == {"10.0.0.1", "10.0.0.2", "10.0.0.3"}
    finally:
        await workers.stop()


async def _rcode(workers: DnsWorkers, name: str) -> int:
    return (await ask(workers, name)).rcode()
