"""Where the other clusters' DNS servers are, found the way k8gb finds them.

Each peer cluster publishes a glue A record `<GLUEA_PREFIX><tag>-<zone>` in the edge (parent)
zone. Resolving it through `EDGE_DNS_SERVERS` gives the peer's addresses; the peer is then asked at
those addresses on the edge server's port (k8gb.md §4.4), which is what lets several clusters share
one port on different loopback addresses in a test, and one well-known port in production.

Glue answers are cached for their TTL (bounded, so a long TTL cannot pin a moved peer and a zero
TTL cannot turn every reconcile into an edge query). Concurrent lookups of one name share a single
query. When the edge cannot be reached, the last known addresses are kept: peers do not vanish
because the edge had a bad second.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
from opentelemetry import trace

from app.domain.zones import ZoneConfig, zone_for
from app.peers import wire

log = logging.getLogger(__name__)

HostPort = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Peer:
    """One peer cluster for one zone: its glue name, addresses and the servers to ask, in order."""

    geo_tag: str
    glue_name: str
    addresses: tuple[str, ...] = ()
    nameservers: tuple[HostPort, ...] = ()
    error: str | None = None


@dataclass(frozen=True, slots=True)
class _Glue:
    addresses: tuple[str, ...]
    error: str | None
    expires: float
    stale: bool = False  # the edge did not answer: these are the addresses it gave last


def peer_nameservers(address: str, edge_servers: Sequence[HostPort]) -> list[HostPort]:
    """k8gb's rule: the first edge port, then every other non-53 edge port, then 53 if no edge used it."""
    if not edge_servers:
        return [(address, 53)]
    ports = [edge_servers[0][1]] + [port for _, port in edge_servers if port != 53]
    if all(port != 53 for _, port in edge_servers):
        ports.append(53)
    return [(address, port) for port in dict.fromkeys(ports)]


class PeerDirectory:
    """Peers per zone, resolved through the edge DNS servers; see the module docstring.

    `timeout` bounds each query to one edge server. `min_ttl`/`max_ttl` bound how long a glue
    answer is trusted; `retry_seconds` is how soon a failed or empty lookup is tried again.
    `clock` and `tracer` are seams for tests (None: the global tracer provider).
    """

    def __init__(
        self,
        zones: Sequence[ZoneConfig],
        own_tag: str,
        peer_tags: Sequence[str],
        glue_prefix: str,
        edge_servers: Sequence[HostPort],
        timeout: float = 2.0,
        *,
        min_ttl: float = 1.0,
        max_ttl: float = 30.0,
        retry_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self.zones = list(zones)
        self.own_tag = own_tag
        self.peer_tags = [tag for tag in dict.fromkeys(peer_tags) if tag != own_tag]
        self.glue_prefix = glue_prefix
        self.edge_servers = list(edge_servers)
        self.timeout = timeout
        self.min_ttl, self.max_ttl, self.retry_seconds = min_ttl, max_ttl, retry_seconds
        self._clock = clock
        self.tracer = tracer or wire.default_tracer()
        self._cache: dict[str, _Glue] = {}
        self._inflight: dict[str, asyncio.Task[_Glue]] = {}

    def zone_for(self, host: str) -> ZoneConfig | None:
        return zone_for(host, self.zones)

    def nameservers(self, address: str) -> list[HostPort]:
        return peer_nameservers(address, self.edge_servers)

    def invalidate(self) -> None:
        """Forget every cached glue answer (e.g. after the edge zone was rewritten)."""
        self._cache.clear()

    async def peers(self, zone: ZoneConfig) -> list[Peer]:
        """Every peer tag for the zone, resolved concurrently; unresolved peers carry an error."""
        names = [zone.glue_name(self.glue_prefix, tag) for tag in self.peer_tags]
        glues = await asyncio.gather(*(self._glue(name) for name in names))
        peers: list[Peer] = []
        for tag, name, glue in zip(self.peer_tags, names, glues, strict=True):
            servers = tuple(ns for address in glue.addresses for ns in self.nameservers(address))
            error = None if glue.addresses else glue.error
            peers.append(Peer(tag, name, glue.addresses, servers, error))
        return peers

    async def peers_for(self, host: str) -> list[Peer]:
        """The peers of the zone holding `host`; none when the host is outside every zone."""
        zone = self.zone_for(host)
        return await self.peers(zone) if zone else []

    async def notify_targets(self) -> list[HostPort]:
        """The first server of every resolved peer in every zone: where NOTIFY is sent."""
        found = await asyncio.gather(*(self.peers(zone) for zone in self.zones))
        return list(dict.fromkeys(p.nameservers[0] for peers in found for p in peers if p.nameservers))

    # --- glue lookup --------------------------------------------------------------------------

    async def _glue(self, name: str) -> _Glue:
        cached = self._cache.get(name)
        if cached is not None and cached.expires > self._clock():
            return cached
        task = self._inflight.get(name)
        if task is None:
            task = asyncio.create_task(self._refresh(name, cached), name=f"glue {name}")
            self._inflight[name] = task
            task.add_done_callback(lambda _: self._inflight.pop(name, None))
        return await asyncio.shield(task)

    async def _refresh(self, name: str, previous: _Glue | None) -> _Glue:
        now = self._clock()
        try:
            addresses, ttl = await self._lookup(name)
        except wire.ExchangeError as exc:
            if previous is not None and previous.addresses:
                # said once per outage, not on every refresh while it lasts
                log.log(
                    logging.DEBUG if previous.stale else logging.WARNING,
                    "edge DNS did not answer for %s (%s); keeping %s",
                    name,
                    exc.reason,
                    previous.addresses,
                )
                glue = _Glue(previous.addresses, None, now + self.retry_seconds, stale=True)
            else:
                glue = _Glue((), f"glue {name}: {exc.reason}", now + self.retry_seconds)
        else:
            if addresses:
                trusted = min(max(float(ttl or 0), self.min_ttl), self.max_ttl)
                glue = _Glue(tuple(addresses), None, now + trusted)
            else:
                glue = _Glue((), f"glue {name} has no A record in edge DNS", now + self.retry_seconds)
        if (previous.addresses if previous else ()) != glue.addresses:
            log.info("peer glue %s -> %s", name, list(glue.addresses) or glue.error)
        elif previous is not None and previous.stale and not glue.stale:
            log.info("edge DNS answers for %s again", name)
        self._cache[name] = glue
        return glue

    async def _lookup(self, name: str) -> tuple[list[str], int | None]:
        """Ask each edge server in turn; the first usable answer (even "no such name") wins."""
        if not self.edge_servers:
            raise wire.ExchangeError("no EDGE_DNS_SERVERS configured", "unconfigured")
        reasons: list[str] = []
        for host, port in self.edge_servers:
            query = dns.message.make_query(name, dns.rdatatype.A)  # RD set: the edge may be a resolver
            with wire.client_span(
                self.tracer, "peer.glue", qname=name, qtype="A", host=host, port=port
            ) as span:
                try:
                    response = await wire.exchange(query, host, port, self.timeout)
                    rcode = response.rcode()
                    if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
                        text = dns.rcode.to_text(rcode)
                        raise wire.ExchangeError(f"answered {text}", text)
                except wire.ExchangeError as exc:
                    wire.record_failure(span, exc)
                    reasons.append(f"{host}:{port} {exc.reason}")
                    continue
                addresses, ttl = wire.a_records(response)
                wire.record_response(span, response, addresses)
                return addresses, ttl
        raise wire.ExchangeError("; ".join(reasons), "unreachable")
