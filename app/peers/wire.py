"""One DNS exchange with a peer or edge server, traced, with failures turned into short text.

Peers and edge servers are other people's machines: anything can come back, or nothing. Every
exchange here either returns a parsed response or raises `ExchangeError` with a one-line reason
that is fit for a log line and for `status.peers[].error`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import dns.asyncbackend
import dns.asyncquery
import dns.exception
import dns.flags
import dns.inet
import dns.message
import dns.rcode
import dns.rdatatype
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

TRACER_NAME = "pygslb.peers"


class ExchangeError(Exception):
    """The server could not be asked, or its answer could not be used.

    `kind` is a short, low-cardinality class for span attributes: timeout, connection_refused, malformed,
    unresolvable, network, or the rcode text of an unusable answer.
    """

    def __init__(self, reason: str, kind: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


def classify(exc: BaseException, timeout: float) -> ExchangeError:
    if isinstance(exc, dns.exception.Timeout | TimeoutError):
        return ExchangeError(f"no answer within {timeout:g}s", "timeout")
    if isinstance(exc, ConnectionRefusedError):
        return ExchangeError("connection refused", "connection_refused")
    if isinstance(exc, dns.exception.DNSException | EOFError | ValueError):
        return ExchangeError(f"malformed response ({type(exc).__name__})", "malformed")
    return ExchangeError(f"{type(exc).__name__}: {exc}".rstrip(": "), "network")


async def to_address(host: str, port: int, timeout: float) -> str:
    """dnspython needs an IP; edge servers may be given by name (k8gb allows it). The lookup counts
    against the exchange's `timeout`: a slow system resolver must not hold a glue lookup for 20 s."""
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    try:
        async with asyncio.timeout(timeout):
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except TimeoutError as exc:
        raise ExchangeError(f"{host} did not resolve within {timeout:g}s", "unresolvable") from exc
    except OSError as exc:
        raise ExchangeError(f"{host} does not resolve ({exc})", "unresolvable") from exc
    if not infos:
        raise ExchangeError(f"{host} does not resolve", "unresolvable")
    return str(infos[0][4][0])


async def exchange(
    query: dns.message.Message, host: str, port: int, timeout: float, *, tcp_fallback: bool = True
) -> dns.message.Message:
    """Send over UDP (TCP when the answer is truncated); raise ExchangeError on any failure.

    The UDP socket is connected, so a closed port fails at once ("connection refused") instead
    of costing a whole timeout, as it does for k8gb's Go resolver.
    """
    try:
        where = await to_address(host, port, timeout)
        backend = dns.asyncbackend.get_backend("asyncio")
        family = dns.inet.af_for_address(where)
        make_socket: Any = backend.make_socket  # untyped in dnspython
        async with await make_socket(family, socket.SOCK_DGRAM, 0, None, (where, port)) as sock:
            response = await dns.asyncquery.udp(query, where, timeout=timeout, port=port, sock=sock)
        if tcp_fallback and response.flags & dns.flags.TC:
            response = await dns.asyncquery.tcp(query, where, timeout=timeout, port=port)
        return response
    except ExchangeError:
        raise
    except (OSError, dns.exception.DNSException, EOFError, ValueError, TimeoutError) as exc:
        raise classify(exc, timeout) from exc


def a_records(response: dns.message.Message) -> tuple[list[str], int | None]:
    """The A addresses of the answer section, sorted as text (as k8gb sorts them), and their least TTL."""
    addresses: set[str] = set()
    ttl: int | None = None
    for rrset in response.answer:
        if rrset.rdtype == dns.rdatatype.A:
            addresses.update(rdata.address for rdata in rrset)
            ttl = rrset.ttl if ttl is None else min(ttl, rrset.ttl)
    return sorted(addresses), ttl


def default_tracer() -> trace.Tracer:
    """A proxy onto the global provider, so tracing set up after construction still applies."""
    return trace.get_tracer(TRACER_NAME)


@contextmanager
def client_span(
    tracer: trace.Tracer,
    span_name: str,
    *,
    qname: str,
    qtype: str,
    host: str,
    port: int,
    extra: dict[str, str] | None = None,
) -> Iterator[Span]:
    """A CLIENT span for one exchange, child of whatever span is current (usually the reconcile)."""
    attributes: dict[str, str | int] = {
        "dns.question.name": qname,
        "dns.question.type": qtype,
        "server.address": host,
        "server.port": port,
        **(extra or {}),
    }
    with tracer.start_as_current_span(
        span_name,
        kind=SpanKind.CLIENT,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except asyncio.CancelledError:
            span.set_attribute("pygslb.cancelled", True)  # as app.telemetry.spans marks it
            raise


def record_response(span: Span, response: dns.message.Message, answers: Sequence[str]) -> None:
    span.set_attribute("dns.response_code", dns.rcode.to_text(response.rcode()))
    span.set_attribute("dns.answers", list(answers))


def record_failure(span: Span, error: ExchangeError) -> None:
    span.record_exception(error.__cause__ or error)
    span.set_attribute("error.type", error.kind)
    span.set_status(Status(StatusCode.ERROR, error.reason))
