"""The server as a resolver or a peer sees it: real UDP/TCP on 127.0.0.1, queried with dnspython and dig."""

from __future__ import annotations

import asyncio
import re
import socket
from collections import Counter

import dns.asyncquery
import dns.edns
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdatatype
import dns.update
import pytest

from app.dnsserver.server import DnsServer
from app.dnsserver.zonetable import ZoneTable
from app.domain.endpoint import Changes, Endpoint

from .conftest import BIG, HUGE, MANY, NS_NAMES, RR, ZONE, Notifications
from .udpbatch import UdpBatch


async def ask(
    server: DnsServer,
    name: str,
    rdtype: str = "A",
    *,
    tcp: bool = False,
    edns: int | None = 0,
    payload: int = 1232,
    options: list[dns.edns.Option] | None = None,
    source: str | None = None,
) -> dns.message.Message:
    use_edns: int | bool = False if edns is None else edns
    query = dns.message.make_query(name, rdtype, use_edns=use_edns, payload=payload, options=options)
    if tcp:
        return await dns.asyncquery.tcp(query, "127.0.0.1", port=server.port, timeout=3)
    return await dns.asyncquery.udp(query, "127.0.0.1", port=server.port, timeout=3, source=source)


def addresses(response: dns.message.Message) -> list[str]:
    return [rdata.to_text() for rrset in response.answer for rdata in rrset]


def soa_ttl(response: dns.message.Message) -> int:
    (soa,) = response.authority
    assert soa.rdtype == dns.rdatatype.SOA
    return soa.ttl


@pytest.mark.parametrize("tcp", [pytest.param(False, id="udp"), pytest.param(True, id="tcp")])
@pytest.mark.parametrize(
    "name, rdtype, rcode, answer, ttl",
    [
        pytest.param(f"app.{ZONE}", "A", "NOERROR", ["10.0.0.1", "10.0.0.2", "10.0.0.3"], 30, id="host-a"),
        pytest.param(
            "APP.Cloud.Example.COM", "A", "NOERROR", ["10.0.0.1", "10.0.0.2", "10.0.0.3"], 30, id="any-case"
        ),
        pytest.param(
            f"localtargets-app.{ZONE}", "A", "NOERROR", ["10.0.0.1", "10.0.0.2"], 30, id="localtargets"
        ),
        pytest.param(f"single.{ZONE}", "A", "NOERROR", ["10.0.0.9"], 45, id="record-ttl"),
        pytest.param(f"txt.{ZONE}", "TXT", "NOERROR", ['"hello world"'], 30, id="txt"),
        pytest.param(ZONE, "NS", "NOERROR", [f"{n}." for n in NS_NAMES], 30, id="apex-ns"),
    ],
)
async def test_positive_answers(
    server: DnsServer, tcp: bool, name: str, rdtype: str, rcode: str, answer: list[str], ttl: int
) -> None:
    response = await ask(server, name, rdtype, tcp=tcp)
    assert dns.rcode.to_text(response.rcode()) == rcode
    assert response.flags & dns.flags.AA and not response.flags & dns.flags.RA
    assert sorted(addresses(response)) == sorted(answer)
    assert {rrset.ttl for rrset in response.answer} == {ttl}
    assert response.answer[0].name.to_text() == name.rstrip(".") + "."  # the question's spelling is kept


async def test_apex_soa_has_the_zone_serial(server: DnsServer, table: ZoneTable) -> None:
    response = await ask(server, ZONE, "SOA")
    (soa,) = response.answer[0]
    assert soa.serial == table.serial(ZONE)
    assert soa.mname.to_text() == f"{NS_NAMES[0]}."
    assert soa.minimum == 30


@pytest.mark.parametrize(
    "name, rdtype, rcode, neg_ttl",
    [
        pytest.param(f"nope.{ZONE}", "A", "NXDOMAIN", 30, id="unknown-name"),
        pytest.param(f"sub.app.{ZONE}", "A", "NXDOMAIN", 30, id="below-a-host"),
        pytest.param("nothing.geo.example.org", "A", "NXDOMAIN", 60, id="other-zone-negttl"),
        pytest.param(f"app.{ZONE}", "AAAA", "NOERROR", 30, id="nodata-aaaa"),
        pytest.param(f"app.{ZONE}", "TXT", "NOERROR", 30, id="nodata-txt"),
        pytest.param(f"under.{ZONE}", "A", "NOERROR", 30, id="empty-non-terminal"),
        pytest.param(ZONE, "A", "NOERROR", 30, id="apex-nodata"),
    ],
)
async def test_negative_answers_carry_the_soa(
    server: DnsServer, name: str, rdtype: str, rcode: str, neg_ttl: int
) -> None:
    response = await ask(server, name, rdtype)
    assert dns.rcode.to_text(response.rcode()) == rcode
    assert response.flags & dns.flags.AA
    assert response.answer == []
    assert soa_ttl(response) == neg_ttl


@pytest.mark.parametrize(
    "name, rdtype, tcp",
    [
        pytest.param("example.com", "A", False, id="parent-zone"),
        pytest.param("www.google.com", "A", False, id="foreign-name"),
        pytest.param(ZONE, "AXFR", True, id="axfr"),
        pytest.param(ZONE, "IXFR", True, id="ixfr"),
    ],
)
async def test_refused(server: DnsServer, name: str, rdtype: str, tcp: bool) -> None:
    response = await ask(server, name, rdtype, tcp=tcp)
    assert response.rcode() == dns.rcode.REFUSED
    assert not response.flags & (dns.flags.AA | dns.flags.RA)
    assert response.answer == []


async def test_never_recurses_even_when_asked(server: DnsServer) -> None:
    response = await ask(server, "www.google.com", "A")
    assert response.flags & dns.flags.RD  # echoed
    assert not response.flags & dns.flags.RA


@pytest.mark.parametrize(
    "edns, payload, expected_payload",
    [
        pytest.param(0, 4096, 1232, id="edns-advertises-1232"),
        pytest.param(0, 512, 1232, id="small-client-payload"),
        pytest.param(None, 512, None, id="no-edns-no-opt"),
    ],
)
async def test_edns_echo(
    server: DnsServer, edns: int | None, payload: int, expected_payload: int | None
) -> None:
    response = await ask(server, f"app.{ZONE}", edns=edns, payload=payload)
    if expected_payload is None:
        assert response.edns == -1
    else:
        assert response.edns == 0 and response.payload == expected_payload


async def test_unknown_edns_version_gets_badvers(server: DnsServer) -> None:
    response = await ask(server, f"app.{ZONE}", edns=1)
    assert response.rcode() == dns.rcode.BADVERS
    assert response.edns == 0 and response.answer == []


@pytest.mark.parametrize(
    "name, edns, payload, truncated, count",
    [
        pytest.param(f"big.{ZONE}", None, 512, True, len(BIG), id="no-edns-512"),
        pytest.param(f"big.{ZONE}", 0, 1232, False, len(BIG), id="edns-fits"),
        pytest.param(f"big.{ZONE}", 0, 600, True, len(BIG), id="edns-small-payload"),
        pytest.param(f"huge.{ZONE}", 0, 4096, True, len(HUGE), id="over-1232"),
    ],
)
async def test_truncation_then_tcp_retry(
    server: DnsServer, name: str, edns: int | None, payload: int, truncated: bool, count: int
) -> None:
    response = await ask(server, name, edns=edns, payload=payload)
    assert bool(response.flags & dns.flags.TC) == truncated
    limit = max(512, min(payload, 1232)) if edns is not None else 512
    assert len(response.to_wire()) <= limit
    if truncated:
        assert response.answer == []
        response = await ask(server, name, edns=edns, payload=payload, tcp=True)
        assert not response.flags & dns.flags.TC
    assert len(addresses(response)) == count


async def test_several_queries_on_one_tcp_connection(server: DnsServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    names = [f"app.{ZONE}", f"single.{ZONE}", f"nope.{ZONE}"]
    for i, name in enumerate(names):
        wire = dns.message.make_query(name, "A", id=100 + i).to_wire()
        writer.write(len(wire).to_bytes(2, "big") + wire)
    rcodes = []
    for _ in names:
        length = int.from_bytes(await reader.readexactly(2), "big")
        response = dns.message.from_wire(await reader.readexactly(length))
        rcodes.append((response.id, dns.rcode.to_text(response.rcode())))
    writer.close()
    assert rcodes == [(100, "NOERROR"), (101, "NOERROR"), (102, "NXDOMAIN")]


async def _first_answers(server: DnsServer, name: str, count: int, **kwargs: str) -> list[list[str]]:
    """Answer lists of `count` identical queries (same bytes but the ID), sent in batches."""
    batch = await UdpBatch.open(server.port, f"app.{ZONE}", **kwargs)
    orders: list[list[str]] = []
    try:
        template = dns.message.make_query(name, "A", use_edns=0)
        for start in range(0, count, 100):
            packets = []
            for qid in range(start, min(start + 100, count)):
                template.id = qid
                packets.append(template.to_wire())
            replies = await batch.exchange(packets)
            for qid in sorted(replies):
                orders.append(addresses(dns.message.from_wire(replies[qid][0])))
    finally:
        batch.close()
    assert len(orders) >= count * 0.95
    return orders


@pytest.mark.parametrize(
    "name, size",
    [pytest.param(f"app.{ZONE}", 3, id="enumerated"), pytest.param(f"many.{ZONE}", len(MANY), id="drawn")],
)
async def test_round_robin_shuffles_per_query(server: DnsServer, name: str, size: int) -> None:
    orders = await _first_answers(server, name, 600)
    assert all(len(order) == size for order in orders)
    firsts = Counter(order[0] for order in orders)
    assert len(firsts) == size  # every target leads sometimes
    assert min(firsts.values()) > len(orders) / size / 3
    assert len({tuple(order) for order in orders}) > size


async def test_weighted_order_follows_weights(server: DnsServer) -> None:
    orders = await _first_answers(server, f"weighted.{ZONE}", 2000)
    share = Counter(order[0] for order in orders)["10.1.0.1"] / len(orders)
    assert 0.72 < share < 0.88  # weight 80 of 100


async def test_zero_weights_always_last_in_random_order(server: DnsServer) -> None:
    orders = await _first_answers(server, f"zero.{ZONE}", 800)
    assert all(set(order[2:]) == {"10.3.0.1", "10.3.0.2"} for order in orders)
    assert Counter(order[2] for order in orders).keys() == {"10.3.0.1", "10.3.0.2"}
    assert Counter(order[0] for order in orders).keys() == {"10.1.0.1", "10.2.0.1"}


@pytest.mark.parametrize(
    "subnet, prefix, expected, scope",
    [
        pytest.param("10.10.7.0", 24, {"10.10.0.5", "10.10.0.6"}, 24, id="eu-client"),
        pytest.param("10.20.7.0", 24, {"10.20.0.5"}, 24, id="us-client"),
        pytest.param("192.0.2.0", 24, {"10.10.0.5", "10.10.0.6", "10.20.0.5"}, 24, id="unknown-gets-all"),
    ],
)
async def test_geoip_by_client_subnet(
    server: DnsServer, subnet: str, prefix: int, expected: set[str], scope: int
) -> None:
    response = await ask(server, f"geo.{ZONE}", options=[dns.edns.ECSOption(subnet, prefix)])
    assert set(addresses(response)) == expected
    (ecs,) = [o for o in response.options if isinstance(o, dns.edns.ECSOption)]
    assert (ecs.address, ecs.srclen, ecs.scopelen) == (subnet, prefix, scope)


async def test_ecs_on_non_geo_answer_has_scope_zero(server: DnsServer) -> None:
    response = await ask(server, f"app.{ZONE}", options=[dns.edns.ECSOption("10.20.7.0", 24)])
    (ecs,) = [o for o in response.options if isinstance(o, dns.edns.ECSOption)]
    assert (ecs.srclen, ecs.scopelen) == (24, 0)


@pytest.mark.parametrize(
    "source, expected",
    [
        pytest.param("127.0.0.2", {"10.20.0.5"}, id="us-source"),
        pytest.param("127.0.0.1", {"10.10.0.5", "10.10.0.6", "10.20.0.5"}, id="unlocated-source"),
    ],
)
async def test_geoip_by_source_address_without_ecs(
    server: DnsServer, source: str, expected: set[str]
) -> None:
    for _ in range(3):  # the second query comes from the plan cache: still per source
        response = await ask(server, f"geo.{ZONE}", source=source)
        assert set(addresses(response)) == expected


@pytest.mark.parametrize("subnet", ["0.0.0.0", "::"])
async def test_ecs_source_prefix_zero_is_not_located(server: DnsServer, subnet: str) -> None:
    """`dig +subnet=0.0.0.0/0`: the client asks not to be located (RFC 7871 §7.1.2), and the scope-0
    answer is cached for every client (§7.3.1), so it must not be the packet source's location: all
    targets, as for an unknown location."""
    for _ in range(2):  # the second from the plan cache
        response = await ask(
            server, f"geo.{ZONE}", options=[dns.edns.ECSOption(subnet, 0)], source="127.0.0.2"
        )
        assert set(addresses(response)) == {"10.10.0.5", "10.10.0.6", "10.20.0.5"}
        (ecs,) = [o for o in response.options if isinstance(o, dns.edns.ECSOption)]
        assert (ecs.address, ecs.srclen, ecs.scopelen) == (subnet, 0, 0)


async def test_zone_writes_are_served_at_once(server: DnsServer, table: ZoneTable) -> None:
    assert addresses(await ask(server, f"new.{ZONE}")) == []
    await table.apply(ZONE, Changes(create=(Endpoint(f"new.{ZONE}", ("10.9.9.9",)),)))
    assert addresses(await ask(server, f"new.{ZONE}")) == ["10.9.9.9"]
    table.set_ns_names(ZONE, ["gslb-ns-za-cloud.example.com"])
    assert addresses(await ask(server, ZONE, "NS")) == ["gslb-ns-za-cloud.example.com."]


async def test_wildcard_records_answer_names_that_do_not_exist(server: DnsServer, table: ZoneTable) -> None:
    """RFC 4592, for Ingress hosts like `*.apps.cloud.example.com` (k8gb's CoreDNS plugin answers only
    the literal `*` name): the wildcard answers under its parent, with the question's name as owner,
    unless a name exists there; it is looked up at the closest existing ancestor only."""
    apps = f"apps.{ZONE}"
    await table.apply(
        ZONE,
        Changes(
            create=(
                Endpoint(f"*.{apps}", ("10.8.0.1",)),
                Endpoint(f"exact.{apps}", ("10.8.0.2",)),
            )
        ),
    )
    for name, rcode, answer in (
        (f"anything.{apps}", "NOERROR", ["10.8.0.1"]),
        (f"two.levels.{apps}", "NOERROR", ["10.8.0.1"]),  # levels.apps does not exist either
        (f"exact.{apps}", "NOERROR", ["10.8.0.2"]),  # an existing name is never synthesized
        (f"below.exact.{apps}", "NXDOMAIN", []),  # exact.apps is the closest encloser: no *.exact
        (apps, "NOERROR", []),  # exists (an empty non-terminal): NODATA, not the wildcard
    ):
        response = await ask(server, name)
        assert (dns.rcode.to_text(response.rcode()), addresses(response)) == (rcode, answer), name
        if answer:
            assert response.answer[0].name.to_text() == f"{name}."
    nodata = await ask(server, f"anything.{apps}", "TXT")
    assert (nodata.rcode(), nodata.answer, soa_ttl(nodata)) == (dns.rcode.NOERROR, [], 30)

    # Answers cached for synthesized names follow the wildcard's writes.
    await table.apply(ZONE, Changes(delete=(Endpoint(f"*.{apps}", ("10.8.0.1",)),)))
    assert dns.rcode.to_text((await ask(server, f"anything.{apps}")).rcode()) == "NXDOMAIN"
    await table.apply(ZONE, Changes(create=(Endpoint(f"*.{apps}", ("10.8.0.3",)),)))
    assert addresses(await ask(server, f"anything.{apps}")) == ["10.8.0.3"]


async def test_a_name_created_or_deleted_under_a_wildcard_changes_the_answers_below_it(
    server: DnsServer, table: ZoneTable
) -> None:
    """Once `a.apps` exists it is the closest encloser of `m.a.apps` (NXDOMAIN: no `*.a.apps`); once it
    is gone `*.apps` answers again. Answers cached by the query's bytes used to keep the old verdict."""
    apps = f"apps.{ZONE}"
    wildcard, host = Endpoint(f"*.{apps}", ("10.8.0.1",)), Endpoint(f"a.{apps}", ("10.8.0.2",))
    await table.apply(ZONE, Changes(create=(wildcard,)))
    below = f"m.a.{apps}"
    for edns in (None, 0):  # the same question in two spellings: both cached
        assert addresses(await ask(server, below, edns=edns)) == ["10.8.0.1"]

    await table.apply(ZONE, Changes(create=(host,)))
    for edns in (None, 0):
        assert dns.rcode.to_text((await ask(server, below, edns=edns)).rcode()) == "NXDOMAIN", edns

    await table.apply(ZONE, Changes(delete=(host,)))
    for edns in (None, 0):
        assert addresses(await ask(server, below, edns=edns)) == ["10.8.0.1"], edns


def _notify(name: str) -> dns.message.Message:
    message = dns.message.make_query(name, "SOA")
    message.set_opcode(dns.opcode.NOTIFY)
    message.flags |= dns.flags.AA
    return message


@pytest.mark.parametrize("tcp", [pytest.param(False, id="udp"), pytest.param(True, id="tcp")])
async def test_notify_for_zone_name_calls_back(
    server: DnsServer, notifications: Notifications, tcp: bool
) -> None:
    query = _notify(f"LocalTargets-App.{ZONE}")
    send = dns.asyncquery.tcp if tcp else dns.asyncquery.udp
    response = await send(query, "127.0.0.1", port=server.port, timeout=3)
    assert response.opcode() == dns.opcode.NOTIFY
    assert response.rcode() == dns.rcode.NOERROR
    assert response.flags & dns.flags.QR and response.flags & dns.flags.AA
    assert response.id == query.id and response.question == query.question
    assert notifications == [(ZONE, f"localtargets-app.{ZONE}")]


async def test_notify_outside_zones_is_refused(server: DnsServer, notifications: Notifications) -> None:
    response = await dns.asyncquery.udp(_notify("example.net"), "127.0.0.1", port=server.port, timeout=3)
    assert response.rcode() == dns.rcode.REFUSED
    assert notifications == []


@pytest.mark.parametrize(
    "query",
    [
        pytest.param(dns.update.UpdateMessage(ZONE), id="update"),
        pytest.param(dns.message.make_query(f"app.{ZONE}", "A"), id="status"),
    ],
)
async def test_other_opcodes_are_not_implemented(server: DnsServer, query: dns.message.Message) -> None:
    if query.opcode() == dns.opcode.QUERY:
        query.set_opcode(dns.opcode.STATUS)
    response = await dns.asyncquery.udp(query, "127.0.0.1", port=server.port, timeout=3)
    assert response.rcode() == dns.rcode.NOTIMP


def _udp_exchange(port: int, packet: bytes, timeout: float = 0.5) -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(packet, ("127.0.0.1", port))
        try:
            return sock.recv(65535)
        except TimeoutError:
            return None


@pytest.mark.parametrize(
    "packet, reply",
    [
        pytest.param(b"\x12\x34\x01", None, id="shorter-than-header"),
        pytest.param(b"\x12\x34\x81\x00" + b"\x00" * 8, None, id="a-response"),
        pytest.param(
            b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07exam", "FORMERR", id="cut-question"
        ),
        pytest.param(
            b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01",
            "FORMERR",
            id="pointer-loop",
        ),
        pytest.param(b"\x12\x34\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00", "FORMERR", id="no-question"),
    ],
)
async def test_malformed_packets_get_formerr_at_most(
    server: DnsServer, packet: bytes, reply: str | None
) -> None:
    got = await asyncio.to_thread(_udp_exchange, server.port, packet)
    if reply is None:
        assert got is None
    else:
        assert got is not None and len(got) == 12  # header only
        response = dns.message.from_wire(got)
        assert response.id == 0x1234 and dns.rcode.to_text(response.rcode()) == reply
    assert addresses(await ask(server, f"single.{ZONE}")) == ["10.0.0.9"]


@pytest.mark.parametrize("questions", [0, 2])
async def test_a_query_without_exactly_one_question_keeps_its_edns(server: DnsServer, questions: int) -> None:
    """FORMERR, and the OPT record RFC 6891 §7 asks for in a response to a query that had one."""
    query = dns.message.make_query(f"single.{ZONE}", "A", use_edns=0, payload=1232)
    query.question = query.question * questions
    got = await asyncio.to_thread(_udp_exchange, server.port, query.to_wire())
    assert got is not None
    response = dns.message.from_wire(got)
    assert (response.id, dns.rcode.to_text(response.rcode())) == (query.id, "FORMERR")
    assert response.edns == 0 and not response.question


async def test_malformed_tcp_frame_closes_the_connection(server: DnsServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    garbage = b"\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07exam"
    writer.write(len(garbage).to_bytes(2, "big") + garbage)
    assert await asyncio.wait_for(reader.read(), 3) == b""
    writer.close()
    assert server.dropped == 1


async def test_random_bytes_then_a_valid_query(server: DnsServer) -> None:
    import random

    rng = random.Random(7)
    batch = await UdpBatch.open(server.port, f"app.{ZONE}")
    try:
        for _ in range(30):
            await batch.exchange([rng.randbytes(rng.randrange(0, 300)) for _ in range(100)])
    finally:
        batch.close()
    assert server.queries > 2500 and server.dropped > 0
    assert sorted(addresses(await ask(server, f"app.{ZONE}"))) == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]


async def test_counters(server: DnsServer) -> None:
    await ask(server, f"app.{ZONE}")
    await ask(server, f"app.{ZONE}")
    await ask(server, f"nope.{ZONE}")
    await ask(server, "example.net")
    await asyncio.to_thread(_udp_exchange, server.port, b"\x00", 0.2)
    assert server.queries == 5
    assert server.responses == Counter({"NOERROR": 2, "NXDOMAIN": 1, "REFUSED": 1})
    assert server.dropped == 1


async def test_dig_sees_the_records(server: DnsServer) -> None:
    async def dig(*args: str) -> str:
        process = await asyncio.create_subprocess_exec(
            "dig",
            "@127.0.0.1",
            "-p",
            str(server.port),
            "+time=2",
            "+tries=1",
            *args,
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await process.communicate()
        assert process.returncode == 0
        return out.decode()

    short = await dig(f"app.{ZONE}", "A", "+short")
    assert sorted(short.split()) == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    full = await dig(f"nope.{ZONE}", "A")
    assert "status: NXDOMAIN" in full and "flags: qr aa rd;" in full
    assert re.search(rf"^{ZONE}\.\s+30\s+IN\s+SOA\s", full, re.MULTILINE)
    tcp = await dig(f"big.{ZONE}", "A", "+tcp", "+short")
    assert len(tcp.split()) == len(BIG)
    subnet = await dig(f"geo.{ZONE}", "A", "+subnet=10.20.1.0/24", "+short")
    assert subnet.split() == ["10.20.0.5"]
    refused = await dig(ZONE, "AXFR")
    assert "Transfer failed" in refused


async def test_a_zone_write_keeps_cached_answers_of_other_names(server: DnsServer, table: ZoneTable) -> None:
    """Reconciles write the zone all the time: answers for untouched names (negative ones included)
    stay on the fast path, while the written names and the apex are answered afresh."""
    await ask(server, f"app.{ZONE}")
    await ask(server, f"nothing.{ZONE}")
    assert dns.rcode.to_text((await ask(server, f"new.{ZONE}")).rcode()) == "NXDOMAIN"  # cached negative
    before = server.responses["NOERROR"], server.responses["NXDOMAIN"]

    await table.apply(ZONE, Changes(create=(Endpoint(f"new.{ZONE}", ("10.9.9.9",), "A", 30),)))
    assert server.cached_for(f"app.{ZONE}"), "the untouched name's answer was kept"
    assert server.cached_for(f"nothing.{ZONE}"), "an untouched negative answer was kept"
    assert addresses(await ask(server, f"new.{ZONE}")) == ["10.9.9.9"]
    app_answer = await ask(server, f"app.{ZONE}")
    assert sorted(addresses(app_answer)) == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    nothing = await ask(server, f"nothing.{ZONE}")
    assert dns.rcode.to_text(nothing.rcode()) == "NXDOMAIN"
    assert nothing.authority[0].rdtype == dns.rdatatype.SOA
    assert (server.responses["NOERROR"], server.responses["NXDOMAIN"]) == (before[0] + 2, before[1] + 1)

    await table.apply(
        ZONE,
        Changes(
            update_old=(Endpoint(f"app.{ZONE}", ("10.0.0.1", "10.0.0.2", "10.0.0.3"), "A", 30, RR),),
            update_new=(Endpoint(f"app.{ZONE}", ("10.0.0.7",), "A", 30, RR),),
        ),
    )
    assert not server.cached_for(f"app.{ZONE}"), "the written name's answer was dropped"
    assert addresses(await ask(server, f"app.{ZONE}")) == ["10.0.0.7"]
