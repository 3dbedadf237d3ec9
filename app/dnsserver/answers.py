"""Plans: ready-made responses for one exact query, so that repeating it costs a dict hit and a join.

A plan is built once per distinct query (everything after the 2-byte ID: flags, question, EDNS
options) with dnspython, from the zone table's compiled record sets. It holds every byte of the
response except the ID. Per-query ordering is a pick among pre-rendered permutations (small sets),
or a join of pre-rendered answer RRs (large sets); geoip without ECS picks per client location.

Answer chunks can be spliced in any order because each was rendered with its owner as a pointer to
the question (offset 12) and positive answers carry nothing after them but the OPT record. Every
splice is checked once against dnspython's own rendering; a mismatch falls back to that rendering.
"""

from __future__ import annotations

import bisect
import logging
import math
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from app.dnsserver import ordering
from app.dnsserver.ordering import Mode
from app.dnsserver.zonetable import Lookup, ServedRRset, ZoneTable, wire_length

log = logging.getLogger(__name__)

Address = tuple[Any, ...]
"""A socket address as asyncio gives it: (host, port) or (host, port, flowinfo, scope_id)."""

OUR_PAYLOAD = 1232
"""EDNS0 UDP payload we advertise and the most we send over UDP (DNS flag day 2020)."""
PLAIN_UDP_LIMIT = 512


class Plan(Protocol):
    rcode: str
    hits: int
    """Times served from the cache (the server counts responses by rcode from these)."""

    def udp(self, qid: bytes, client: Address) -> bytes:
        """The UDP response (truncated when too large) to query `qid` from `client` (host, port)."""
        ...

    def tcp(self, qid: bytes, client: Address) -> bytes:
        """The full response, for TCP."""
        ...


class StaticPlan:
    __slots__ = ("rcode", "hits", "_full")

    def __init__(self, rcode: str, full: bytes) -> None:
        self.rcode = rcode
        self.hits = 0
        self._full = full

    def udp(self, qid: bytes, client: Address) -> bytes:
        return qid + self._full

    def tcp(self, qid: bytes, client: Address) -> bytes:
        return qid + self._full


class TruncatedPlan:
    """Too large for the client's UDP payload: TC over UDP, the full plan over TCP."""

    __slots__ = ("rcode", "hits", "_short", "_full")

    def __init__(self, short: bytes, full: Plan) -> None:
        self.rcode = full.rcode
        self.hits = 0
        self._short = short
        self._full = full

    def udp(self, qid: bytes, client: Address) -> bytes:
        return qid + self._short

    def tcp(self, qid: bytes, client: Address) -> bytes:
        return self._full.tcp(qid, client)


class UniformPlan:
    """Every permutation pre-rendered, drawn uniformly: one random number per query."""

    __slots__ = ("rcode", "hits", "_variants", "_count", "_random")

    def __init__(self, rcode: str, variants: Sequence[bytes]) -> None:
        self.rcode = rcode
        self.hits = 0
        self._variants = tuple(variants)
        self._count = len(self._variants)
        self._random = ordering.rng.random

    def udp(self, qid: bytes, client: Address) -> bytes:
        return qid + self._variants[int(self._random() * self._count)]

    tcp = udp


class WeightedPlan:
    """Every permutation pre-rendered with its probability: one random number and a bisect per query."""

    __slots__ = ("rcode", "hits", "_variants", "_cumulative", "_total", "_random")

    def __init__(self, rcode: str, variants: Sequence[bytes], cumulative: Sequence[float]) -> None:
        self.rcode = rcode
        self.hits = 0
        self._variants = tuple(variants)
        self._total = cumulative[-1]
        self._cumulative = (*cumulative[:-1], math.inf)  # a draw can never fall past the last variant
        self._random = ordering.rng.random

    def udp(self, qid: bytes, client: Address) -> bytes:
        return qid + self._variants[bisect.bisect_right(self._cumulative, self._random() * self._total)]

    tcp = udp


class DrawnPlan:
    """Too many answers to enumerate: order drawn per query and answer RRs joined."""

    __slots__ = ("rcode", "hits", "_head", "_tail", "_chunks", "_draw")

    def __init__(
        self, rcode: str, head: bytes, tail: bytes, chunks: Sequence[bytes], draw: Callable[[], list[int]]
    ) -> None:
        self.rcode = rcode
        self.hits = 0
        self._head = head
        self._tail = tail
        self._chunks = tuple(chunks)
        self._draw = draw

    def udp(self, qid: bytes, client: Address) -> bytes:
        chunks = self._chunks
        return b"".join([qid, self._head, *[chunks[i] for i in self._draw()], self._tail])

    tcp = udp


class GeoPlan:
    """geoip without ECS: the client is the source address; one sub-plan per client location."""

    __slots__ = ("rcode", "hits", "_locate", "_build", "_by_location")

    def __init__(self, rcode: str, locate: Callable[[str], str | None], build: Callable[[str | None], Plan]):
        self.rcode = rcode
        self.hits = 0
        self._locate = locate
        self._build = build
        self._by_location: dict[str | None, Plan] = {}

    def _plan(self, client: Address) -> Plan:
        location = self._locate(client[0])
        plan = self._by_location.get(location)
        if plan is None:
            plan = self._by_location[location] = self._build(location)
        return plan

    def udp(self, qid: bytes, client: Address) -> bytes:
        return self._plan(client).udp(qid, client)

    def tcp(self, qid: bytes, client: Address) -> bytes:
        return self._plan(client).tcp(qid, client)


def udp_limit(query: dns.message.Message) -> int:
    if query.edns < 0:
        return PLAIN_UDP_LIMIT
    return max(PLAIN_UDP_LIMIT, min(query.payload, OUR_PAYLOAD))


def client_subnet(query: dns.message.Message) -> dns.edns.ECSOption | None:
    for option in query.options:
        if isinstance(option, dns.edns.ECSOption):
            return option
    return None


def response_for(
    query: dns.message.Message, rcode: dns.rcode.Rcode, *, ecs_scope: int | None = None
) -> dns.message.Message:
    """dnspython's response skeleton: ID, opcode, RD and CD echoed, never RA, EDNS0 with our payload."""
    response = dns.message.make_response(query, our_payload=OUR_PAYLOAD)
    response.flags |= query.flags & dns.flags.CD
    if query.edns >= 0:
        options: list[dns.edns.Option] = []
        ecs = client_subnet(query)
        if ecs is not None and ecs_scope is not None:
            options.append(dns.edns.ECSOption(ecs.address, ecs.srclen, min(ecs_scope, ecs.srclen)))
        response.use_edns(0, query.ednsflags & dns.flags.DO, OUR_PAYLOAD, options=options)
    response.set_rcode(rcode)
    return response


def _wire_pair(response: dns.message.Message, limit: int) -> tuple[bytes, bytes | None]:
    """The response without its ID, and its truncated UDP stand-in when it exceeds `limit` (else None).

    The stand-in is what many authoritative servers send: TC, the question and OPT, no records.
    """
    # max_size: dnspython would cap at the client's payload; want_shuffle: keep the rrset order we chose.
    wire = response.to_wire(max_size=65535, want_shuffle=False)
    if len(wire) <= limit:
        return wire[2:], None
    answer, authority, additional = response.answer, response.authority, response.additional
    response.answer, response.authority, response.additional = [], [], []
    response.flags |= dns.flags.TC
    try:
        short = response.to_wire(max_size=65535, want_shuffle=False)
    finally:
        response.answer, response.authority, response.additional = answer, authority, additional
        response.flags &= ~dns.flags.TC
    return wire[2:], short[2:]


def static_plan(query: dns.message.Message, response: dns.message.Message) -> Plan:
    full, udp_tc = _wire_pair(response, udp_limit(query))
    plan = StaticPlan(dns.rcode.to_text(response.rcode()), full)
    return plan if udp_tc is None else TruncatedPlan(udp_tc, plan)


def build_plan(table: ZoneTable, query: dns.message.Message) -> Plan:
    """The plan for a standard QUERY with exactly one question (the caller checks both)."""
    question = query.question[0]
    if query.edns > 0:
        return static_plan(query, response_for(query, dns.rcode.BADVERS))
    if question.rdclass != dns.rdataclass.IN or question.rdtype in (dns.rdatatype.AXFR, dns.rdatatype.IXFR):
        return static_plan(query, response_for(query, dns.rcode.REFUSED))
    if dns.rdatatype.is_metatype(question.rdtype) and question.rdtype != dns.rdatatype.ANY:
        return static_plan(query, response_for(query, dns.rcode.FORMERR))
    lookup = table.lookup(question.name, question.rdtype)
    if lookup is None:
        return static_plan(query, response_for(query, dns.rcode.REFUSED))
    if lookup.answer is None:
        return _negative(query, lookup)
    return _positive(table, query, question.name, lookup.answer)


def _negative(query: dns.message.Message, lookup: Lookup) -> Plan:
    response = response_for(query, lookup.rcode, ecs_scope=0)
    if lookup.rcode != dns.rcode.SERVFAIL:  # not authoritative for anything yet while loading
        response.flags |= dns.flags.AA
    if lookup.soa is not None:
        response.authority = [lookup.soa]
    return static_plan(query, response)


def _positive(
    table: ZoneTable, query: dns.message.Message, qname: dns.name.Name, served: ServedRRset
) -> Plan:
    policy = served.policy
    count = len(served.chunks)
    if policy.mode is not Mode.GEO:
        return _arranged(query, qname, served, tuple(range(count)), ecs_scope=0)
    ecs = client_subnet(query)
    if ecs is not None:
        # Source prefix 0: the client asks not to be located (RFC 7871 §7.1.2), and a cache keeps our
        # scope-0 answer for everyone, so the packet source must not pick it: all targets, as unknown.
        location = table.locate(ecs.address) if ecs.srclen > 0 else None
        indices = policy.subset(count, location)
        return _arranged(query, qname, served, indices, ecs_scope=ecs.srclen)

    def build(location: str | None) -> Plan:
        return _arranged(query, qname, served, policy.subset(count, location), ecs_scope=0)

    return GeoPlan("NOERROR", table.locate, build)


def _arranged(
    query: dns.message.Message,
    qname: dns.name.Name,
    served: ServedRRset,
    indices: Sequence[int],
    *,
    ecs_scope: int,
) -> Plan:
    rdatas = list(served.rrset)
    response = response_for(query, dns.rcode.NOERROR, ecs_scope=ecs_scope)
    response.flags |= dns.flags.AA
    response.answer = [dns.rrset.from_rdata_list(qname, served.rrset.ttl, [rdatas[i] for i in indices])]
    full, udp_tc = _wire_pair(response, udp_limit(query))
    plan = _reorderable(qname, served, indices, full)
    return plan if udp_tc is None else TruncatedPlan(udp_tc, plan)


def _reorderable(qname: dns.name.Name, served: ServedRRset, indices: Sequence[int], full: bytes) -> Plan:
    """Splice the pre-rendered answer RRs into dnspython's rendering, in every order the policy allows."""
    start = wire_length(qname) + 4 + 10  # question after the 12-byte header, minus the stripped ID
    answers = b"".join(served.chunks[i] for i in indices)
    if full[start : start + len(answers)] != answers:
        if served.policy.mode is not Mode.FIXED:
            log.warning("answers for %s cannot be reordered; serving them in a fixed order", qname)
        return StaticPlan("NOERROR", full)
    head, tail = full[:start], full[start + len(answers) :]
    arrangements = ordering.enumerate_orders(served.policy, indices)
    if arrangements is None:
        policy = served.policy
        return DrawnPlan("NOERROR", head, tail, served.chunks, lambda: ordering.draw_order(policy, indices))
    variants = [head + b"".join(served.chunks[i] for i in order) + tail for order in arrangements.orders]
    if len(variants) == 1:
        return StaticPlan("NOERROR", variants[0])
    if arrangements.cumulative is None:
        return UniformPlan("NOERROR", variants)
    return WeightedPlan("NOERROR", variants, arrangements.cumulative)


def error_response(query: dns.message.Message, rcode: dns.rcode.Rcode) -> bytes:
    """A question-echo error (REFUSED, NOTIMP, FORMERR) for a query that parsed."""
    return response_for(query, rcode).to_wire()


def question_count_error(query: dns.message.Message) -> bytes:
    """FORMERR for a query that parsed but does not ask exactly one question: no question echoed, and
    the OPT record when the query had one (RFC 6891 §7: a response to a query with OPT carries OPT)."""
    response = response_for(query, dns.rcode.FORMERR)
    response.question = []
    return response.to_wire()


def header_only(header: bytes, rcode: dns.rcode.Rcode) -> bytes:
    """FORMERR for a packet whose header is readable but whose body is not: ID, opcode and RD echoed."""
    flags = int.from_bytes(header[2:4], "big")
    message = dns.message.Message(id=int.from_bytes(header[:2], "big"))
    message.flags = dns.flags.QR | (flags & dns.flags.RD)
    message.set_opcode(dns.opcode.from_flags(flags))
    message.set_rcode(rcode)
    return message.to_wire()
