"""A tiny authoritative DNS responder for tests: answers A queries from a dict, over real UDP.

It stands in for a peer cluster's DNS server (and for an edge server) where the test needs to
control misbehaviour: answer garbage, refuse, stay silent, or hold answers at a gate. It records
every message it receives, NOTIFYs included.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field

import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdatatype
import dns.rrset


class Gate:
    """Holds every answer until `size` queries have arrived (or `patience` runs out).

    Two responders behind one gate of size 2 answer only once both queries are in flight at the
    same time: a client that asks one after the other sees the first query time out.
    """

    def __init__(self, size: int, patience: float = 5.0) -> None:
        self.size = size
        self.patience = patience
        self.arrived = 0
        self.max_in_flight = 0
        self._in_flight = 0
        self._open = asyncio.Event()

    async def pass_through(self) -> None:
        self.arrived += 1
        self._in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self._in_flight)
        if self.arrived >= self.size:
            self._open.set()
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.patience):
                    await self._open.wait()
        finally:
            self._in_flight -= 1


@dataclass
class Responder(asyncio.DatagramProtocol):
    """Answers `records[name]` (A) authoritatively; NXDOMAIN for other names. `mode` picks misbehaviour."""

    records: dict[str, list[str]] = field(default_factory=dict)
    ttl: int = 30
    mode: str = "answer"  # answer | garbage | refuse | servfail | silent
    gate: Gate | None = None
    received: list[dns.message.Message] = field(default_factory=list)
    address: tuple[str, int] = ("", 0)
    _transport: asyncio.DatagramTransport | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.DatagramTransport)
        self._transport = transport
        self.address = transport.get_extra_info("sockname")[:2]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        task = asyncio.get_running_loop().create_task(self._answer(data, addr))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        self.received.append(query)
        if self.gate is not None:
            await self.gate.pass_through()
        if self.mode == "silent" or self._transport is None:
            return
        if self.mode == "garbage":
            self._transport.sendto(data[:2] + b"\x81\x80\xff\xff", addr)  # right ID, truncated nonsense
            return
        self._transport.sendto(self.respond(query).to_wire(), addr)

    def respond(self, query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if self.mode == "refuse":
            response.set_rcode(dns.rcode.REFUSED)
        elif self.mode == "servfail":
            response.set_rcode(dns.rcode.SERVFAIL)
        elif query.opcode() == dns.opcode.NOTIFY:
            pass
        else:
            question = query.question[0]
            name = question.name.to_text(omit_final_dot=True).lower()
            if name not in self.records:
                response.set_rcode(dns.rcode.NXDOMAIN)
            elif question.rdtype == dns.rdatatype.A and self.records[name]:
                rrset = dns.rrset.from_text_list(question.name, self.ttl, "IN", "A", self.records[name])
                response.answer.append(rrset)
        return response

    def names_asked(self) -> list[str]:
        return [q.question[0].name.to_text(omit_final_dot=True) for q in self.received]

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._transport is not None:
            self._transport.close()


async def serve(responder: Responder, host: str, port: int) -> Responder:
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(lambda: responder, local_addr=(host, port))
    return responder


async def shared_port(hosts: Iterable[str], attempts: int = 20) -> int:
    """A UDP port free on every one of `hosts` (e.g. 127.0.0.1, .2, .3), as k8gb's peer rule needs.

    Probed with plain sockets, closed before returning, so the port can be bound at once.
    """
    hosts = list(hosts)
    for _ in range(attempts):
        with contextlib.ExitStack() as stack:
            first = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
            first.bind((hosts[0], 0))
            port = int(first.getsockname()[1])
            try:
                for host in hosts[1:]:
                    stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)).bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no UDP port free on all of {hosts}")
