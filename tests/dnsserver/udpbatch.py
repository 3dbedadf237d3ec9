"""A UDP client that fires many packets without awaiting each reply and collects replies by ID.

Each batch ends with a sentinel query (ID 0xFFFF): the server answers in arrival order, so once the
sentinel's answer is back every earlier packet has been handled.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import dns.message

SENTINEL_ID = 0xFFFF


class UdpBatch(asyncio.DatagramProtocol):
    def __init__(self, sentinel_name: str) -> None:
        query = dns.message.make_query(sentinel_name, "A")
        query.id = SENTINEL_ID
        self._sentinel = query.to_wire()
        self.replies: dict[int, list[bytes]] = defaultdict(list)
        self.lost_sentinels = 0
        self._done: asyncio.Event = asyncio.Event()
        self._transport: asyncio.DatagramTransport | None = None

    @classmethod
    async def open(cls, port: int, sentinel_name: str, *, source: str = "127.0.0.1") -> UdpBatch:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_datagram_endpoint(
            lambda: cls(sentinel_name), local_addr=(source, 0), remote_addr=("127.0.0.1", port)
        )
        return protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.DatagramTransport)
        self._transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if len(data) < 2:
            self.replies[-1].append(data)
            return
        qid = int.from_bytes(data[:2], "big")
        if qid == SENTINEL_ID:
            self._done.set()
        else:
            self.replies[qid].append(data)

    async def exchange(self, packets: list[bytes], timeout: float = 3.0) -> dict[int, list[bytes]]:
        """Send every packet, then wait for the sentinel; replies by ID (callers give unique IDs)."""
        assert self._transport is not None
        self.replies = defaultdict(list)
        self._done.clear()
        for packet in packets:
            self._transport.sendto(packet)
        self._transport.sendto(self._sentinel)
        try:
            await asyncio.wait_for(self._done.wait(), timeout)
        except TimeoutError:
            self.lost_sentinels += 1
        return self.replies

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
