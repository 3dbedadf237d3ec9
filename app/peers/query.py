"""What each peer cluster currently serves as healthy for a host: its `localtargets-<host>` A record.

A peer publishes `localtargets-<host>` only while the host is healthy there, so NXDOMAIN or an
empty answer means "no healthy targets" and is not an error. Everything else that goes wrong (no
answer, refused, SERVFAIL, garbage) makes the peer *skipped* for this round, exactly as k8gb skips
a peer it cannot resolve: the caller still gets a result for it, with the error text, so status
can show why. All peers are asked at once, so one dead peer costs one timeout, not one per peer.
Queries are non-recursive: the peer is authoritative, and must not go elsewhere on our behalf.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
from opentelemetry import trace

from app.domain.zones import localtargets_name
from app.peers import wire
from app.peers.discovery import Peer, PeerDirectory

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PeerResult:
    """One peer's answer: sorted targets, or why it was skipped; `server` is host:port last asked."""

    geo_tag: str
    targets: list[str] = field(default_factory=list)
    error: str | None = None
    server: str = ""


class PeerResolver:
    """Asks every peer of a host's zone for `localtargets-<host>`; `timeout` bounds each query."""

    def __init__(
        self, directory: PeerDirectory, timeout: float = 1.0, *, tracer: trace.Tracer | None = None
    ) -> None:
        self.directory = directory
        self.timeout = timeout
        self.tracer = tracer or directory.tracer
        self._failing: dict[str, set[str]] = {}  # per peer, the names it fails for now

    async def localtargets(self, host: str) -> dict[str, PeerResult]:
        """Results keyed by peer geo tag; empty when the host is outside every zone or there are no peers."""
        qname = localtargets_name(host.lower().rstrip("."))
        peers = await self.directory.peers_for(host)
        results = await asyncio.gather(*(self._ask(peer, qname) for peer in peers))
        for result in results:
            self._log_transition(result, qname)
        return {r.geo_tag: r for r in results}

    async def _ask(self, peer: Peer, qname: str) -> PeerResult:
        if not peer.nameservers:
            return PeerResult(peer.geo_tag, error=peer.error or "no address for peer")
        reasons: list[str] = []
        server = ""
        for host, port in peer.nameservers:
            server = f"{host}:{port}"
            try:
                targets = await self._query(peer.geo_tag, qname, host, port)
            except wire.ExchangeError as exc:
                reasons.append(f"{server} {exc.reason}")
                continue
            return PeerResult(peer.geo_tag, targets, None, server)
        return PeerResult(peer.geo_tag, error="; ".join(reasons), server=server)

    async def _query(self, geo_tag: str, qname: str, host: str, port: int) -> list[str]:
        query = dns.message.make_query(qname, dns.rdatatype.A, flags=0)  # RD clear: ask, don't recurse
        extra = {"peer.geo_tag": geo_tag}
        with wire.client_span(
            self.tracer, "peer.query", qname=qname, qtype="A", host=host, port=port, extra=extra
        ) as span:
            try:
                response = await wire.exchange(query, host, port, self.timeout)
                rcode = response.rcode()
                if rcode == dns.rcode.NXDOMAIN:
                    wire.record_response(span, response, [])
                    return []
                if rcode != dns.rcode.NOERROR:
                    text = dns.rcode.to_text(rcode)
                    raise wire.ExchangeError(f"answered {text}", text)
            except wire.ExchangeError as exc:
                wire.record_failure(span, exc)
                raise
            targets, _ = wire.a_records(response)
            wire.record_response(span, response, targets)
            return targets

    def forget(self, host: str) -> None:
        """No Gslb serves `host` any more: a failure for it no longer keeps its peers "failing" (their
        recovery and next outage went unsaid). Quietly: it says nothing about the peer."""
        qname = localtargets_name(host.lower().rstrip("."))
        for names in self._failing.values():
            names.discard(qname)

    def _log_transition(self, result: PeerResult, qname: str) -> None:
        """Warn when a peer starts failing and say when it answers every name again; stay quiet while
        nothing changes, also while it fails for some names and answers others (a zone it does not
        serve): the state is per peer, kept per name."""
        names = self._failing.setdefault(result.geo_tag, set())
        was_failing = bool(names)
        if result.error is not None:
            names.add(qname)
        else:
            names.discard(qname)
        if bool(names) == was_failing:
            return
        if names:
            log.warning("peer %s skipped: can't resolve %s (%s)", result.geo_tag, qname, result.error)
        else:
            log.info("peer %s answers again (%s)", result.geo_tag, result.server)
