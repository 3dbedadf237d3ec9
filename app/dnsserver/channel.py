"""The messages between the main process and its DNS worker processes, and how they travel.

Both ends are our own processes joined by a socketpair, so the payload is pickle (of plain frozen
dataclasses and the domain's Endpoint/Changes); each message is one frame, a 4-byte length and the
pickle. Main → worker: `WorkerConfig` once, then lists of `ZoneWrite` (batched per loop turn).
Worker → main: `Ready` once it serves, then `Notify` for every NOTIFY it acknowledged.
"""

from __future__ import annotations

import asyncio
import pickle
import struct
from dataclasses import dataclass

from app.dnsserver.geo import GeoSpec
from app.dnsserver.zonetable import TableSnapshot
from app.logformat import Format

_LENGTH = struct.Struct(">I")
MAX_FRAME = 1 << 30
"""A frame larger than this is a broken channel, not a message."""


class ChannelClosed(Exception):
    """The other end went away (EOF or a frame cut short)."""


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """The first frame a worker reads: where to listen, how, and the table to start from."""

    host: str
    port: int
    reuse_port: bool
    snapshot: TableSnapshot
    geo: GeoSpec
    log_level: int
    log_format: Format  # the main process's LOG_FORMAT: the worker logs as it does
    tcp_idle_timeout: float = 10.0
    max_tcp_connections: int = 256


@dataclass(frozen=True, slots=True)
class Ready:
    """The worker answers queries on `port`."""

    port: int


@dataclass(frozen=True, slots=True)
class Notify:
    """A NOTIFY the worker acknowledged, for the controller (zone, name)."""

    zone: str
    name: str


def encode(message: object) -> bytes:
    """One frame: length, then the pickle."""
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(body)) + body


async def receive(reader: asyncio.StreamReader) -> object:
    """The next message; ChannelClosed at EOF."""
    try:
        header = await reader.readexactly(_LENGTH.size)
        (length,) = _LENGTH.unpack(header)
        if length > MAX_FRAME:
            raise ChannelClosed(f"frame of {length} bytes")
        body = await reader.readexactly(length)
    except (asyncio.IncompleteReadError, ConnectionError) as exc:
        raise ChannelClosed(str(exc)) from None
    return pickle.loads(body)
