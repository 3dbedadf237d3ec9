"""The IPv4 addresses a Gslb's hosts resolve to in this cluster, with k8gb's precedence (k8gb.md §1.4):

annotation `k8gb.io/exposed-hostnames` (resolved through the edge DNS servers on every reconcile) >
annotation `k8gb.io/exposed-ip-addresses` > CLUSTER_EXPOSED_IPS > the load balancer status of the Ingress
or referenced LoadBalancer Service, or the addresses of a referenced route's Gateway (an IP, or a
hostname resolved through edge DNS, following CNAMEs up to 8 hops). IPv6 addresses are
dropped, as k8gb keeps IPv4 only. A failure is a Warning `ExposedIPResolutionError` on the Gslb.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Sequence

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype

from app.domain.gslb import EXPOSED_IPS_ANNOTATION, Gslb
from app.stores.kube.events import EXPOSED_IP_RESOLUTION_ERROR, KubeEvents
from app.stores.kube.refs import HOSTNAME, IP_ADDRESS
from app.stores.kube.servers import KubeServerSource, gslb_object_ref

log = logging.getLogger("pygslb.kube.exposed")

EXPOSED_HOSTNAMES_ANNOTATION = "k8gb.io/exposed-hostnames"
MAX_CNAME_HOPS = 8


class ExposedIpError(Exception):
    """This cluster's addresses for a Gslb cannot be determined."""


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def ipv4_only(addresses: Sequence[str]) -> list[str]:
    """Unique IPv4 addresses in order; IPv6 silently dropped, anything else logged and dropped."""
    kept: list[str] = []
    for address in addresses:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            log.warning("ignoring %r: not an IP address", address)
            continue
        if ip.version == 4 and address not in kept:
            kept.append(address)
    return kept


async def resolve_a(name: str, servers: Sequence[tuple[str, int]], timeout: float = 2.0) -> list[str]:
    """A records of `name` asked of the edge DNS servers in turn, CNAMEs followed; sorted like k8gb's dig."""
    if not servers:
        raise ExposedIpError(f"cannot resolve {name}: no edge DNS servers (EDGE_DNS_SERVERS) configured")
    qname = name.rstrip(".") + "."
    for _ in range(MAX_CNAME_HOPS):
        response = await _ask(qname, servers, timeout)
        if response.rcode() != dns.rcode.NOERROR:
            raise ExposedIpError(f"cannot resolve {name}: {dns.rcode.to_text(response.rcode())}")
        found = sorted(
            rr.address for rrset in response.answer if rrset.rdtype == dns.rdatatype.A for rr in rrset
        )
        if found:
            return found
        cnames = [
            rr.target.to_text()
            for rrset in response.answer
            if rrset.rdtype == dns.rdatatype.CNAME
            for rr in rrset
        ]
        if not cnames:
            raise ExposedIpError(f"cannot resolve {name}: no A record")
        qname = cnames[-1]
    raise ExposedIpError(f"cannot resolve {name}: more than {MAX_CNAME_HOPS} CNAMEs")


async def _ask(qname: str, servers: Sequence[tuple[str, int]], timeout: float) -> dns.message.Message:
    errors = []
    for host, port in servers:
        try:
            address = await _address(host, timeout)
            query = dns.message.make_query(qname, dns.rdatatype.A)
            response = await dns.asyncquery.udp(query, address, port=port, timeout=timeout)
            if response.flags & dns.flags.TC:
                response = await dns.asyncquery.tcp(query, address, port=port, timeout=timeout)
            return response
        except (dns.exception.DNSException, OSError) as exc:
            errors.append(f"{host}:{port}: {exc or type(exc).__name__}")
    raise ExposedIpError(f"can't resolve FQDN {qname} using nameservers: {'; '.join(errors)}")


async def _address(host: str, timeout: float) -> str:
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    try:
        async with asyncio.timeout(timeout):  # the system resolver has no deadline of its own
            infos = await asyncio.get_running_loop().getaddrinfo(host, None, family=socket.AF_INET)
    except TimeoutError:
        raise OSError(f"{host} did not resolve within {timeout:g}s") from None
    return str(infos[0][4][0])


class KubeExposedIps:
    """`ExposedIpSource` for kubernetes mode."""

    def __init__(
        self,
        servers: KubeServerSource,
        *,
        cluster_exposed_ips: Sequence[str] = (),
        edge_servers: Sequence[tuple[str, int]] = (),
        events: KubeEvents | None = None,
        timeout: float = 2.0,
    ) -> None:
        self.servers = servers
        self.cluster_exposed_ips = list(cluster_exposed_ips)
        self.edge_servers = list(edge_servers)
        self.events = events
        self.timeout = timeout

    async def exposed_ips(self, gslb: Gslb) -> list[str]:
        try:
            found = await self._discover(gslb)
        except ExposedIpError as exc:
            if self.events is not None:
                await self.events.warning(gslb_object_ref(gslb), EXPOSED_IP_RESOLUTION_ERROR, str(exc))
            raise
        return ipv4_only(found)

    async def _discover(self, gslb: Gslb) -> list[str]:
        try:
            return await self._by_precedence(gslb)
        finally:
            self.servers.forget(gslb)  # what the servers step resolved is used at most once

    async def _by_precedence(self, gslb: Gslb) -> list[str]:
        annotations = gslb.metadata.annotations or {}
        hostnames = _split(annotations.get(EXPOSED_HOSTNAMES_ANNOTATION))
        if hostnames:
            resolved = await asyncio.gather(
                *(resolve_a(h, self.edge_servers, self.timeout) for h in hostnames)
            )
            return [ip for ips in resolved for ip in ips]
        annotated = _split(annotations.get(EXPOSED_IPS_ANNOTATION))
        if annotated:
            for ip in annotated:
                try:
                    ipaddress.IPv4Address(ip)
                except ValueError as exc:
                    raise ExposedIpError(f"{EXPOSED_IPS_ANNOTATION}: {ip!r} is not an IPv4 address") from exc
            return annotated
        if self.cluster_exposed_ips:
            return list(self.cluster_exposed_ips)
        return await self._from_addresses((await self.servers.exposure_for(gslb)).addresses)

    async def _from_addresses(self, addresses: list[tuple[str, str]]) -> list[str]:
        return await resolve_addresses(addresses, self.edge_servers, self.timeout)


async def resolve_addresses(
    addresses: Sequence[tuple[str, str]], edge_servers: Sequence[tuple[str, int]], timeout: float = 2.0
) -> list[str]:
    """The load balancer addresses of an Ingress, Service or Gateway: IPs as they are, hostnames
    resolved through edge DNS; another Gateway address type is refused, as k8gb refuses it."""
    found: list[str] = []
    for kind, value in addresses:
        if kind == IP_ADDRESS:
            found.append(value)
        elif kind == HOSTNAME:
            found.extend(await resolve_a(value, edge_servers, timeout))
        else:
            raise ExposedIpError(f"unsupported address type {kind}")
    return found
