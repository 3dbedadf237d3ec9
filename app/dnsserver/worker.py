"""A DNS worker process: serves a replica of the main process's zone table on its own core.

Started by `DnsWorkers` as `python -m app.dnsserver.worker <fd>`, where fd is its end of a socketpair.
It reads a `WorkerConfig` (address and a snapshot of the table), builds its own geo locator and table
replica, serves with the ordinary `DnsServer`, says `Ready`, then replays the batches of writes it is
sent and reports NOTIFYs back. It exits when the channel closes (the main process stopped or died:
no orphans) or on SIGTERM; Ctrl-C is left to the main process, which stops its workers in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys

from app.dnsserver.channel import ChannelClosed, Notify, Ready, WorkerConfig, encode, receive
from app.dnsserver.loop import install_uvloop
from app.dnsserver.server import DnsServer
from app.dnsserver.zonetable import ZoneTable, ZoneWrite
from app.logformat import install as install_log_format

log = logging.getLogger(__name__)


async def _replicate(reader: asyncio.StreamReader, table: ZoneTable) -> None:
    """Replay every batch in order until the channel closes."""
    while True:
        batch = await receive(reader)
        if not isinstance(batch, list) or not all(isinstance(w, ZoneWrite) for w in batch):
            raise TypeError(f"expected a list of ZoneWrite, got {type(batch).__name__}")
        for write in batch:
            table.replay(write)


async def run(fd: int) -> int:
    """Serve until told to stop; the exit code says whether the replica stayed equal to the main table."""
    reader, writer = await asyncio.open_connection(sock=socket.socket(fileno=fd))
    try:
        config = await receive(reader)
    except ChannelClosed:
        return 0
    if not isinstance(config, WorkerConfig):
        raise TypeError(f"expected a WorkerConfig first, got {type(config).__name__}")
    install_log_format(config.log_level, config.log_format)
    table = ZoneTable.from_snapshot(config.snapshot, await config.geo.build())
    server = DnsServer(
        table,
        config.host,
        config.port,
        on_notify=lambda zone, name: writer.write(encode(Notify(zone, name))),
        tcp_idle_timeout=config.tcp_idle_timeout,
        max_tcp_connections=config.max_tcp_connections,
        reuse_port=config.reuse_port,
    )
    try:
        await server.start()
    except OSError as exc:  # the address is taken or not ours: say so once, the main process reports it
        log.error("DNS worker cannot serve on %s:%d: %s", config.host, config.port, exc.strerror or exc)
        return 1
    writer.write(encode(Ready(server.port)))
    stopped = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopped.set)
    replication = asyncio.create_task(_replicate(reader, table))
    stop_wait = asyncio.create_task(stopped.wait())
    await asyncio.wait([replication, stop_wait], return_when=asyncio.FIRST_COMPLETED)
    stop_wait.cancel()
    code = 0
    if replication.done():
        error = replication.exception()
        if error is not None and not isinstance(error, ChannelClosed):
            # The replica no longer matches the main table: exit so a fresh one starts from a snapshot.
            log.error("DNS worker stops: replication failed: %s", error)
            code = 1
    else:
        replication.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await replication
    await server.stop()
    writer.close()
    return code


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        raise SystemExit("usage: python -m app.dnsserver.worker <socket fd>")
    install_uvloop()
    sys.exit(asyncio.run(run(int(sys.argv[1]))))


if __name__ == "__main__":
    main()
