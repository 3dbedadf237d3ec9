"""The built-in authoritative DNS server: asyncio UDP and TCP on one port, answering from a ZoneTable.

Behaves like k8gb's CoreDNS `k8s_crd` plugin in front of an authoritative zone: AA answers for the
load-balanced zones, NXDOMAIN/NODATA with the SOA, REFUSED outside its zones and for zone transfers,
no recursion, EDNS0 with truncation over UDP, per-query answer order from the record labels, and
RFC 1996 NOTIFY from peers.

Hot path: the bytes after the 2-byte ID select a ready-made plan (answers.py); the first time a
query is seen it is parsed and planned with dnspython. Hostile input costs at most one parse: an
unreadable UDP packet is dropped or gets a header-only FORMERR; an unreadable TCP frame closes the
connection. TCP connections are capped and closed when idle, so slow clients cannot starve UDP.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from typing import cast

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode

from app.dnsserver.answers import (
    Address,
    Plan,
    build_plan,
    error_response,
    header_only,
    question_count_error,
    response_for,
)
from app.dnsserver.zonetable import NameKey, ZoneTable, name_key

log = logging.getLogger(__name__)

MAX_PLANS = 20_000
"""Distinct queries remembered; the cache is dropped whole when full (and on every zone write)."""
_MAX_KEY = 512
_HEADER = 12


class DnsServer:
    """Serve `table` on `host:port` (UDP and TCP). Counters are plain attributes for the metrics layer."""

    def __init__(
        self,
        table: ZoneTable,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        on_notify: Callable[[str, str], None] | None = None,
        tcp_idle_timeout: float = 10.0,
        max_tcp_connections: int = 256,
        reuse_port: bool = False,
    ) -> None:
        self.table = table
        self.reuse_port = reuse_port
        """SO_REUSEPORT on both sockets, so several worker processes can share one address."""
        self.host = host
        self._requested_port = port
        self._on_notify = on_notify
        self.tcp_idle_timeout = tcp_idle_timeout
        self.max_tcp_connections = max_tcp_connections
        self._queries = 0
        self._responses: Counter[str] = Counter()
        self.dropped = 0
        """Packets not answered (unreadable, or responses sent to us) and TCP frames that closed a link."""
        self.tcp_rejected = 0
        """TCP connections refused because `max_tcp_connections` were open."""
        self.notifies = 0
        self._plans: dict[bytes, Plan] = {}
        # Which cached plans a zone write can affect: each plan is filed under its question's name.
        self._by_name: dict[NameKey, list[bytes]] = {}
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._connections: set[_TcpConnection] = set()
        self._unsubscribe: Callable[[], None] | None = None
        self._port = port

    @property
    def port(self) -> int:
        """The bound port (the real one when 0 was asked for)."""
        return self._port

    @property
    def queries(self) -> int:
        """Packets and TCP frames received (cache hits are counted on their plan and summed here)."""
        return self._queries + sum(plan.hits for plan in self._plans.values())

    @property
    def responses(self) -> Counter[str]:
        """Responses sent, by rcode text (NOERROR, NXDOMAIN, REFUSED, FORMERR, ...).

        Cache hits are counted on their plan (cheaper on the hot path) and summed here.
        """
        total = Counter(self._responses)
        for plan in self._plans.values():
            if plan.hits:
                total[plan.rcode] += plan.hits
        return total

    def _drop_plans(self, changed: frozenset[NameKey] | None = None) -> None:
        """Forget the plans a zone write affects (all when `changed` is None, or when full), keeping
        their hit counts. Dropping only what changed keeps the fast path warm during reconciles."""
        if changed is None:
            for plan in self._plans.values():
                self._keep_count(plan)
            self._plans.clear()
            self._by_name.clear()
            return
        keys: list[bytes] = []
        for name in changed:
            keys.extend(self._by_name.pop(name, ()))
        for key in keys:
            if key in self._plans:
                self._keep_count(self._plans.pop(key))

    def cached_for(self, name: str) -> bool:
        """Whether an answer for `name` is cached (for tests and diagnostics)."""
        return any(key in self._plans for key in self._by_name.get(name_key(dns.name.from_text(name)), ()))

    def _keep_count(self, plan: Plan) -> None:
        if plan.hits:
            self._responses[plan.rcode] += plan.hits
            self._queries += plan.hits

    @property
    def tcp_connections(self) -> int:
        return len(self._connections)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        for attempt in range(20):
            udp, _ = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self),
                local_addr=(self.host, self._requested_port),
                reuse_port=self.reuse_port or None,
            )
            port = udp.get_extra_info("sockname")[1]
            try:
                self._tcp = await loop.create_server(
                    lambda: _TcpConnection(self), self.host, port, reuse_port=self.reuse_port or None
                )
            except OSError:
                udp.close()
                if self._requested_port or attempt == 19:
                    raise
                continue
            self._udp, self._port = udp, port
            break
        self._unsubscribe = self.table.subscribe(self._drop_plans)
        log.info("DNS server listening on %s:%d (UDP+TCP)", self.host, self._port)

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        if self._tcp is not None:
            self._tcp.close()
            for connection in list(self._connections):
                connection.close()
            await self._tcp.wait_closed()
            self._tcp = None
        self._drop_plans()

    # --- answering -------------------------------------------------------------------------------

    def answer_tcp(self, data: bytes, client: Address) -> bytes | None:
        """The response to one TCP frame; None means close the connection. (UDP inlines the same.)"""
        plan = self._plans.get(data[2:])
        if plan is not None:
            plan.hits += 1
            return plan.tcp(data[:2], client)
        return self.answer_new(data, client, False)

    def answer_new(self, data: bytes, client: Address, udp: bool) -> bytes | None:
        """Everything not answered from the plan cache: parse, plan, maybe cache."""
        self._queries += 1
        if len(data) < _HEADER or int.from_bytes(data[2:4], "big") & dns.flags.QR:
            self.dropped += 1  # too short to answer, or a response: answering responses invites loops
            return None
        try:
            query = dns.message.from_wire(data)
        except Exception:  # dnspython raises many exception types on hostile input; all mean "unreadable"
            if not udp:
                self.dropped += 1
                return None
            return self._count(header_only(data[:4], dns.rcode.FORMERR), "FORMERR")
        try:
            return self._answer_parsed(query, data, client, udp)
        except Exception:
            log.exception("DNS server failed on a query for %s", query.question[:1])
            return self._count(error_response(query, dns.rcode.SERVFAIL), "SERVFAIL")

    def _answer_parsed(self, query: dns.message.Message, data: bytes, client: Address, udp: bool) -> bytes:
        opcode = query.opcode()
        if opcode == dns.opcode.NOTIFY:
            return self._notify(query)
        if opcode != dns.opcode.QUERY:
            return self._count(error_response(query, dns.rcode.NOTIMP), "NOTIMP")
        if len(query.question) != 1:
            return self._count(question_count_error(query), "FORMERR")
        plan = build_plan(self.table, query)
        if self._cacheable(query, data):
            if len(self._plans) >= MAX_PLANS:
                self._drop_plans()
            key = data[2:]
            self._plans[key] = plan
            self._by_name.setdefault(name_key(query.question[0].name), []).append(key)
        self._responses[plan.rcode] += 1
        return plan.udp(data[:2], client) if udp else plan.tcp(data[:2], client)

    @staticmethod
    def _cacheable(query: dns.message.Message, data: bytes) -> bool:
        """Only plain questions (optionally with EDNS) are worth remembering by their bytes."""
        return (
            len(data) <= _MAX_KEY
            and not (query.answer or query.authority or query.additional)
            and not query.had_tsig
        )

    def _notify(self, query: dns.message.Message) -> bytes:
        """RFC 1996: acknowledge a NOTIFY for a name in our zones and tell the owner; refuse others."""
        if len(query.question) != 1:
            return self._count(error_response(query, dns.rcode.FORMERR), "FORMERR")
        qname = query.question[0].name
        zone = self.table.zone_of(qname)
        if zone is None:
            return self._count(error_response(query, dns.rcode.REFUSED), "REFUSED")
        response = response_for(query, dns.rcode.NOERROR)
        response.flags |= dns.flags.AA
        self.notifies += 1
        if self._on_notify is not None:
            try:
                self._on_notify(zone.load_balanced_zone, qname.to_text(omit_final_dot=True).lower())
            except Exception:
                log.exception("NOTIFY callback failed for %s", qname)
        return self._count(response.to_wire(), "NOERROR")

    def _count(self, wire: bytes, rcode: str) -> bytes:
        self._responses[rcode] += 1
        return wire


def _not_connected(data: bytes, addr: Address) -> None:
    raise RuntimeError("UDP transport not connected yet")


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self._server = server
        self._plans_get = server._plans.get  # the dict is only ever cleared, never replaced
        self._sendto: Callable[[bytes, Address], None] = _not_connected

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's UDP transport is not a subclass of asyncio.DatagramTransport: no isinstance check.
        self._sendto = cast(asyncio.DatagramTransport, transport).sendto

    def datagram_received(self, data: bytes, addr: Address) -> None:
        """The hot path: one dict lookup by the bytes after the ID, one plan call, one send."""
        plan = self._plans_get(data[2:])
        if plan is not None:
            plan.hits += 1
            self._sendto(plan.udp(data[:2], addr), addr)
            return
        reply = self._server.answer_new(data, addr, True)
        if reply is not None:
            self._sendto(reply, addr)

    def error_received(self, exc: Exception) -> None:
        """ICMP errors from clients that went away: nothing to do."""


class _TcpConnection(asyncio.Protocol):
    """RFC 7766 framing: 2-byte length, many queries per connection, closed when idle or malformed."""

    def __init__(self, server: DnsServer) -> None:
        self._server = server
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._client: Address = ("", 0)
        self._timer: asyncio.TimerHandle | None = None
        self._last = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio subclasses
        server = self._server
        if len(server._connections) >= server.max_tcp_connections:
            server.tcp_rejected += 1
            transport.abort()
            return
        server._connections.add(self)
        self._transport = transport
        peer = transport.get_extra_info("peername")
        self._client = tuple(peer) if peer else ("", 0)
        loop = asyncio.get_running_loop()
        self._last = loop.time()
        self._timer = loop.call_later(server.tcp_idle_timeout, self._check_idle)

    def _check_idle(self) -> None:
        """Closes the connection when no complete query arrived for the idle timeout."""
        loop = asyncio.get_running_loop()
        remaining = self._last + self._server.tcp_idle_timeout - loop.time()
        if remaining > 0:
            self._timer = loop.call_later(remaining, self._check_idle)
        else:
            self.close()

    def data_received(self, data: bytes) -> None:
        transport = self._transport
        if transport is None:
            return
        buffer = self._buffer
        buffer += data
        while len(buffer) >= 2:
            length = int.from_bytes(buffer[:2], "big")
            if length < _HEADER:
                self._server.dropped += 1
                self.close()
                return
            if len(buffer) < 2 + length:
                return
            frame = bytes(buffer[2 : 2 + length])
            del buffer[: 2 + length]
            reply = self._server.answer_tcp(frame, self._client)
            if reply is None:
                self.close()
                return
            transport.write(len(reply).to_bytes(2, "big") + reply)
            self._last = asyncio.get_running_loop().time()

    def pause_writing(self) -> None:
        """A client that does not read its answers stops being read from."""
        if self._transport is not None:
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._server._connections.discard(self)
        self._transport = None
