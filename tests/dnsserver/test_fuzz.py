"""Hostile input: a seeded, fixed-budget fuzzer over UDP and TCP, and slow or half-open TCP clients.

What counts as malformed is decided by dnspython, the same parser the server uses: a packet it cannot
parse is malformed and may get nothing but a header-only FORMERR with its ID. Packets shorter than a
header, and responses (QR set), get nothing at all. Anything that parses is a valid (if odd) message
and must get a well-formed answer to exactly its question: NOTIMP for opcodes we do not serve,
FORMERR for a QUERY without exactly one question, otherwise an answer whose rcode the server may
legitimately give (never SERVFAIL, which would mean the server broke), within the UDP size limit.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator, Callable

import dns.asyncquery
import dns.edns
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import pytest

from app.dnsserver.server import DnsServer
from app.dnsserver.zonetable import ZoneTable

from .conftest import ZONE
from .udpbatch import UdpBatch

SEED = 20260526
UDP_BUDGET = 100_000
TCP_CONNECTIONS = 300
BATCH = 100
HEADER = 12

_QUERY_RCODES = {"NOERROR", "NXDOMAIN", "REFUSED", "FORMERR", "BADVERS"}


@pytest.fixture
async def fuzz_server(table: ZoneTable) -> AsyncIterator[DnsServer]:
    server = DnsServer(table, "127.0.0.1", 0, tcp_idle_timeout=0.3, max_tcp_connections=64)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def _seeds() -> list[bytes]:
    """Valid messages of every shape the server handles; mutations start from these."""
    names = [f"app.{ZONE}", f"geo.{ZONE}", f"big.{ZONE}", f"nope.{ZONE}", ZONE, "example.net", f"many.{ZONE}"]
    seeds: list[bytes] = []
    for name in names:
        for rdtype in ("A", "AAAA", "NS", "SOA", "TXT", "ANY", "AXFR"):
            seeds.append(dns.message.make_query(name, rdtype, use_edns=False).to_wire())
            seeds.append(dns.message.make_query(name, rdtype, use_edns=0, payload=4096).to_wire())
        ecs = dns.edns.ECSOption("10.20.7.0", 24)
        cookie = dns.edns.GenericOption(dns.edns.OptionType.COOKIE, b"\x01" * 8)
        seeds.append(dns.message.make_query(name, "A", use_edns=0, options=[ecs, cookie]).to_wire())
        notify = dns.message.make_query(name, "SOA")
        notify.set_opcode(dns.opcode.NOTIFY)
        seeds.append(notify.to_wire())
    return seeds


def _flip_bits(rng: random.Random, packet: bytes) -> bytes:
    data = bytearray(packet)
    for _ in range(rng.randint(1, 8)):
        position = rng.randrange(len(data) * 8)
        data[position // 8] ^= 1 << (position % 8)
    return bytes(data)


def _truncate(rng: random.Random, packet: bytes) -> bytes:
    return packet[: rng.randrange(len(packet))]


def _odd_flags(rng: random.Random, packet: bytes) -> bytes:
    """Random opcode and flag bits (QR included)."""
    return packet[:2] + rng.randbytes(2) + packet[4:]


def _bogus_counts(rng: random.Random, packet: bytes) -> bytes:
    counts = b"".join(
        rng.choice([0, 1, 2, 0xFFFF, rng.randrange(65536)]).to_bytes(2, "big") for _ in range(4)
    )
    return packet[:4] + counts + packet[12:]


def _compression_loop(rng: random.Random, packet: bytes) -> bytes:
    """Question names made of pointers: to itself, forward, in a cycle, or past the end."""
    pointer = rng.choice([0x0C, 0x0E, 0x10, 0x3FFF, rng.randrange(0x4000)])
    name = rng.choice(
        [
            (0xC000 | pointer).to_bytes(2, "big"),
            b"\x03abc" + (0xC000 | 0x0C).to_bytes(2, "big"),
            b"\x01a\xc0\x12\x01b\xc0\x0c",
        ]
    )
    return packet[:4] + b"\x00\x01\x00\x00\x00\x00\x00\x00" + name + b"\x00\x01\x00\x01"


def _huge_edns(rng: random.Random, packet: bytes) -> bytes:
    """An OPT record with many or lying options, up to a few kilobytes."""
    options = b"".join(
        rng.randrange(65536).to_bytes(2, "big")
        + rng.randrange(0, 600).to_bytes(2, "big")
        + rng.randbytes(rng.randrange(0, 600))
        for _ in range(rng.randint(1, 6))
    )
    opt = b"\x00\x00\x29" + rng.randrange(65536).to_bytes(2, "big") + rng.randbytes(4)
    opt += (len(options) if rng.random() < 0.7 else rng.randrange(65536)).to_bytes(2, "big") + options
    question_end = packet.find(b"\x00", HEADER) + 5
    return packet[:10] + b"\x00\x01" + packet[HEADER:question_end] + opt


def _bad_labels(rng: random.Random, packet: bytes) -> bytes:
    """Extended label types, labels over 63 octets, names over 255 octets."""
    name = rng.choice(
        [
            bytes([rng.randrange(0x40, 0xC0)]) + rng.randbytes(10) + b"\x00",
            b"\x3f" + b"a" * 63 + b"\x00",
            (b"\x3f" + b"a" * 63) * 5 + b"\x00",
            b"\x05ab",
        ]
    )
    return packet[:12] + name + b"\x00\x01\x00\x01"


def _junk_tail(rng: random.Random, packet: bytes) -> bytes:
    return packet + rng.randbytes(rng.randint(1, 40))


def _random_bytes(rng: random.Random, packet: bytes) -> bytes:
    return rng.randbytes(rng.choice([rng.randrange(0, 40), rng.randrange(0, 600)]))


def _oversized(rng: random.Random, packet: bytes) -> bytes:
    return packet + b"\x00" * rng.randrange(1500, 4000)


_MUTATIONS: list[tuple[Callable[[random.Random, bytes], bytes], int]] = [
    (_flip_bits, 30),
    (_truncate, 12),
    (_odd_flags, 12),
    (_bogus_counts, 10),
    (_compression_loop, 8),
    (_huge_edns, 6),
    (_bad_labels, 6),
    (_junk_tail, 6),
    (_random_bytes, 9),
    (_oversized, 1),
]


class Fuzzer:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.seeds = _seeds()
        self._mutations = [m for m, _ in _MUTATIONS]
        self._weights = [w for _, w in _MUTATIONS]

    def packet(self) -> bytes:
        base = self.rng.choice(self.seeds)
        mutation = self.rng.choices(self._mutations, self._weights)[0]
        packet = mutation(self.rng, base)
        if self.rng.random() < 0.2:
            packet = _flip_bits(self.rng, packet) if packet else packet
        return packet

    def frame(self) -> bytes:
        """TCP frames: mostly valid, so that connections live long enough to meet mutants mid-stream."""
        return self.rng.choice(self.seeds) if self.rng.random() < 0.9 else self.packet()


def _parse(packet: bytes) -> dns.message.Message | None:
    try:
        return dns.message.from_wire(packet)
    except Exception:
        return None


def expects_reply(packet: bytes) -> bool:
    return len(packet) >= HEADER and not int.from_bytes(packet[2:4], "big") & dns.flags.QR


def check_reply(packet: bytes, reply: bytes | None, udp: bool) -> str:
    """Asserts the reply is allowed for the packet; returns the packet's class for the tally."""
    if not expects_reply(packet):
        assert reply is None, f"answered a packet that must be ignored: {packet!r}"
        return "ignored"
    query = _parse(packet)
    if query is None:
        if reply is not None:
            assert len(reply) == HEADER, f"malformed packet got more than a header: {packet!r} -> {reply!r}"
            response = dns.message.from_wire(reply)
            assert response.id == int.from_bytes(packet[:2], "big")
            assert response.rcode() == dns.rcode.FORMERR and response.flags & dns.flags.QR
        return "malformed"
    if reply is None:
        return "lost"
    response = dns.message.from_wire(reply)
    assert response.id == query.id and response.flags & dns.flags.QR
    rcode = dns.rcode.to_text(response.rcode())
    opcode = query.opcode()
    if opcode not in (dns.opcode.QUERY, dns.opcode.NOTIFY):
        assert rcode == "NOTIMP", (packet, rcode)
    elif len(query.question) != 1:
        assert rcode == "FORMERR" and len(reply) == HEADER, (packet, rcode)
    else:
        allowed = _QUERY_RCODES if opcode == dns.opcode.QUERY else {"NOERROR", "REFUSED"}
        assert rcode in allowed, (packet, rcode)
        assert response.question == query.question
        assert all(rrset.name == query.question[0].name for rrset in response.answer)
    if udp:
        limit = max(512, min(query.payload, 1232)) if query.edns >= 0 else 512
        assert len(reply) <= limit, (packet, len(reply))
    return "valid"


async def _fuzz_udp(server: DnsServer, fuzzer: Fuzzer, budget: int) -> Counter[str]:
    tally: Counter[str] = Counter()
    client = await UdpBatch.open(server.port, f"single.{ZONE}")
    try:
        for _ in range(budget // BATCH):
            packets = []
            for qid in range(BATCH):
                packet = fuzzer.packet()
                packets.append(qid.to_bytes(2, "big") + packet[2:] if len(packet) >= 2 else packet)
            replies = await client.exchange(packets)
            assert not replies.get(-1), "a reply shorter than an ID"
            for qid, packet in enumerate(packets):
                got = replies.get(qid, [])
                assert len(got) <= 1, f"two replies to one packet: {packet!r}"
                tally[check_reply(packet, got[0] if got else None, udp=True)] += 1
    finally:
        client.close()
    tally["lost_sentinels"] = client.lost_sentinels
    return tally


def _closes(packet: bytes) -> bool:
    """Frames after which the server hangs up: too short, a response, or unparseable."""
    return not expects_reply(packet) or _parse(packet) is None


async def _fuzz_tcp_connection(server: DnsServer, frames: list[bytes], sentinel: bytes) -> Counter[str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    stream = b"".join(len(f).to_bytes(2, "big") + f for f in [*frames, sentinel])
    writer.write(stream)
    expected = []
    for frame in frames:
        if _closes(frame):
            break
        expected.append(frame)
    else:
        expected.append(sentinel)
    tally: Counter[str] = Counter()
    try:
        for frame in expected:
            length = int.from_bytes(await asyncio.wait_for(reader.readexactly(2), 5), "big")
            reply = await asyncio.wait_for(reader.readexactly(length), 5)
            tally[check_reply(frame, reply, udp=False)] += 1
        if len(expected) == len(frames) + 1:
            tally["sentinel"] += 1
        else:
            assert await asyncio.wait_for(reader.read(), 5) == b"", "connection not closed after a bad frame"
            tally["closed"] += 1
    finally:
        writer.close()
    return tally


async def test_fuzz_never_breaks_the_server(fuzz_server: DnsServer) -> None:
    fuzzer = Fuzzer(SEED)
    tally = await _fuzz_udp(fuzz_server, fuzzer, UDP_BUDGET)
    sentinel = dns.message.make_query(f"single.{ZONE}", "A").to_wire()
    for start in range(0, TCP_CONNECTIONS, 16):
        groups = [
            [fuzzer.frame() for _ in range(fuzzer.rng.randint(1, 12))]
            for _ in range(start, min(start + 16, TCP_CONNECTIONS))
        ]
        for result in await asyncio.gather(*(_fuzz_tcp_connection(fuzz_server, g, sentinel) for g in groups)):
            tally.update({f"tcp_{k}": v for k, v in result.items()})
    sent = sum(tally[k] for k in ("ignored", "malformed", "valid", "lost"))
    assert sent == UDP_BUDGET
    assert tally["malformed"] > 10_000 and tally["valid"] > 10_000 and tally["ignored"] > 1_000, tally
    assert tally["lost"] < UDP_BUDGET * 0.02, tally  # the kernel may drop a little under bursts
    assert tally["tcp_closed"] > 50 and tally["tcp_sentinel"] > 50, tally
    assert fuzz_server.responses["SERVFAIL"] == 0
    response = await dns.asyncquery.udp(
        dns.message.make_query(f"app.{ZONE}", "A"), "127.0.0.1", port=fuzz_server.port, timeout=3
    )
    assert sorted(r.to_text() for r in response.answer[0]) == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]


async def _closed_by_server(reader: asyncio.StreamReader, timeout: float) -> bool:
    try:
        return await asyncio.wait_for(reader.read(), timeout) == b""
    except ConnectionResetError:
        return True


async def test_slow_and_half_open_tcp_clients_cannot_exhaust_the_server(table: ZoneTable) -> None:
    server = DnsServer(table, "127.0.0.1", 0, tcp_idle_timeout=0.5, max_tcp_connections=16)
    await server.start()
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    try:
        for i in range(16):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            if i % 2:
                writer.write(b"\x00\x30" + b"\x00" * 10)  # half a frame
            idle.append((reader, writer))
        while server.tcp_connections < 16:
            await asyncio.sleep(0.01)

        extra_reader, extra_writer = await asyncio.open_connection("127.0.0.1", server.port)
        assert await _closed_by_server(extra_reader, 3)
        extra_writer.close()
        assert server.tcp_rejected >= 1

        query = dns.message.make_query(f"single.{ZONE}", "A")
        response = await dns.asyncquery.udp(query, "127.0.0.1", port=server.port, timeout=3)
        assert response.answer[0][0].to_text() == "10.0.0.9"

        assert all(await asyncio.gather(*(_closed_by_server(r, 5) for r, _ in idle)))
        while server.tcp_connections:
            await asyncio.sleep(0.01)
        response = await dns.asyncquery.tcp(query, "127.0.0.1", port=server.port, timeout=3)
        assert response.answer[0][0].to_text() == "10.0.0.9"
    finally:
        for _, writer in idle:
            writer.close()
        await server.stop()


async def test_a_drip_feeding_client_is_closed_despite_activity(table: ZoneTable) -> None:
    server = DnsServer(table, "127.0.0.1", 0, tcp_idle_timeout=0.5)
    await server.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)

    async def drip() -> None:
        writer.write(b"\x03\xe8")  # announces 1000 bytes, then sends one every 50 ms
        while not writer.is_closing() and not reader.at_eof():
            writer.write(b"\x00")
            await asyncio.sleep(0.05)

    dripping = asyncio.create_task(drip())
    try:
        assert await _closed_by_server(reader, 5)
    finally:
        dripping.cancel()
        writer.close()
        await server.stop()
