"""RFC 2136 dynamic update with TSIG (BIND9, Knot, PowerDNS, Windows DNS...): the edge-DNS provider.

`records(zone)` reads the zone by AXFR; `apply(zone, changes)` sends ONE UPDATE message, which the
server applies atomically. The contract rules are DNS prerequisites in that same message (create:
"RRset does not exist"; update and delete: "RRset exists with exactly these values"), so a plan made
from a stale read, or a peer cluster's concurrent write, fails whole instead of overwriting it.
`zone` is the zone the records live in: for edge delegation, the PARENT zone.
"""

from __future__ import annotations

import asyncio
import binascii
import logging
import socket

import dns.asyncquery
import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.tsig
import dns.update
import dns.xfr
import dns.zone
from opentelemetry import trace

from app.domain.endpoint import Changes, Endpoint
from app.providers.base import ChangeConflictError, ProviderError, TransientProviderError
from app.providers.changeset import check_shape, norm_name

log = logging.getLogger("pygslb.providers.rfc2136")

RECORD_TYPES = ("A", "AAAA", "CNAME", "NS", "TXT")
_NAME_TARGETS = {"CNAME", "NS"}
_CONFLICT = {
    dns.rcode.YXRRSET: "a record to create exists already",
    dns.rcode.NXRRSET: "a record to update or delete is missing or holds other values now",
    dns.rcode.YXDOMAIN: "a name to create exists already",
    dns.rcode.NXDOMAIN: "a name to update or delete does not exist",
}
_TRANSIENT = {dns.rcode.SERVFAIL}
_TSIG_ERRORS = (dns.tsig.PeerError, dns.tsig.BadSignature, dns.tsig.BadKey, dns.message.UnknownTSIGKey)
_WIRE_ERRORS = (dns.exception.DNSException, OSError, EOFError, TimeoutError)


# The names BIND's tsig-keygen and ExternalDNS's rfc2136 provider (k8gb's) use; dnspython names MD5 by
# its registered name only.
TSIG_ALGORITHMS = ("hmac-md5", "hmac-sha1", "hmac-sha224", "hmac-sha256", "hmac-sha384", "hmac-sha512")
_TSIG_ALIASES = {"hmac-md5": dns.tsig.HMAC_MD5}


def tsig_algorithm(name: str) -> dns.name.Name | str:
    """A TSIG algorithm named as BIND or ExternalDNS name it, in any case, as dnspython knows it."""
    lowered = name.strip().lower()
    return _TSIG_ALIASES.get(lowered.rstrip("."), lowered)


class Rfc2136Provider:
    name = "rfc2136"

    def __init__(
        self,
        server_host: str,
        server_port: int = 53,
        keyname: str = "",
        secret: str = "",
        algorithm: str = "hmac-sha256",
        timeout: float = 5.0,
        record_types: tuple[str, ...] = RECORD_TYPES,
    ) -> None:
        self.server_host = server_host
        self.server_port = server_port
        self.keyname = keyname
        self.timeout = timeout
        self.record_types = tuple(t.upper() for t in record_types)
        self._key: dns.tsig.Key | None = None
        if keyname:
            try:
                if not binascii.a2b_base64(secret.encode(), strict_mode=True):
                    raise ValueError("empty secret")
                self._key = dns.tsig.Key(keyname, secret, tsig_algorithm(algorithm))
                dns.tsig.get_context(self._key)  # type: ignore[no-untyped-call]
            except (binascii.Error, ValueError) as exc:
                raise ValueError(f"TSIG secret of key {keyname!r} is not valid base64") from exc
            except (NotImplementedError, dns.exception.DNSException) as exc:
                raise ValueError(
                    f"TSIG key {keyname!r}: unsupported algorithm {algorithm!r} "
                    f"(one of {', '.join(TSIG_ALGORITHMS)})"
                ) from exc

    def span_attributes(self, zone: str) -> dict[str, str | int]:
        """What the traced wrapper records on this provider's client spans (OTel DNS conventions)."""
        return {
            "dns.question.name": norm_name(zone),
            "server.address": self.server_host,
            "server.port": self.server_port,
            "network.transport": "tcp",
        }

    def adjust(self, endpoints: list[Endpoint]) -> list[Endpoint]:
        return endpoints

    async def records(self, zone: str) -> list[Endpoint]:
        """Every managed-type record set of the zone except its apex, read by one AXFR."""
        origin = self._origin(zone)
        txn = dns.zone.Zone(origin, relativize=False)
        query, _ = dns.xfr.make_query(txn, keyring=self._key)
        where = await self._address()
        try:
            await dns.asyncquery.inbound_xfr(
                where, txn, query, port=self.server_port, timeout=self.timeout, lifetime=self.timeout * 10
            )
        except dns.xfr.TransferError as exc:
            self._note_rcode(exc.rcode)
            raise self._rcode_error(exc.rcode, f"zone transfer of {zone}") from None
        except _WIRE_ERRORS as exc:
            raise self._translate(exc, f"zone transfer of {zone}") from exc
        self._note_rcode(dns.rcode.NOERROR)
        found: list[Endpoint] = []
        for name, rdataset in txn.iterate_rdatasets():
            rtype = dns.rdatatype.to_text(rdataset.rdtype)
            if name == origin or rtype not in self.record_types:
                continue
            found.append(
                Endpoint(
                    dns_name=name.to_text(omit_final_dot=True).lower(),
                    targets=tuple(sorted(_target_text(rtype, rd) for rd in rdataset)),
                    record_type=rtype,
                    ttl=rdataset.ttl,
                )
            )
        return sorted(found, key=lambda e: e.key)

    async def apply(self, zone: str, changes: Changes) -> None:
        """One UPDATE: prerequisites for every change, then deletes, replacements and adds."""
        check_shape(zone, changes, self.record_types)
        if not changes.has_changes:
            return
        origin = self._origin(zone)
        message = dns.update.UpdateMessage(origin, keyring=self._key)
        try:
            for endpoint in changes.create:
                message.absent(_owner(endpoint), endpoint.record_type)
            for endpoint in (*changes.update_old, *changes.delete):
                message.present(_owner(endpoint), endpoint.record_type, *_targets(endpoint))
            for endpoint in changes.delete:
                message.delete(_owner(endpoint), endpoint.record_type)
            for endpoint in changes.update_new:
                message.delete(_owner(endpoint), endpoint.record_type)
                message.add(_owner(endpoint), endpoint.ttl, endpoint.record_type, *_targets(endpoint))
            for endpoint in changes.create:
                message.add(_owner(endpoint), endpoint.ttl, endpoint.record_type, *_targets(endpoint))
        except dns.exception.DNSException as exc:
            raise ProviderError(f"invalid record in change set for {zone}: {exc}") from exc
        where = await self._address()
        try:
            response = await dns.asyncquery.tcp(message, where, timeout=self.timeout, port=self.server_port)
        except _WIRE_ERRORS as exc:
            raise self._translate(exc, f"update of {zone}") from exc
        rcode = response.rcode()
        self._note_rcode(rcode)
        if rcode != dns.rcode.NOERROR:
            raise self._rcode_error(rcode, f"update of {zone}")
        log.debug("updated %s: %d change(s)", zone, changes.count())

    def _origin(self, zone: str) -> dns.name.Name:
        try:
            return dns.name.from_text(norm_name(zone) + ".")
        except dns.exception.DNSException as exc:
            raise ProviderError(f"{zone!r} is not a valid zone name: {exc}") from exc

    async def _address(self) -> str:
        """dnspython wants an address; the setting may hold a host name."""
        try:
            socket.inet_pton(socket.AF_INET6 if ":" in self.server_host else socket.AF_INET, self.server_host)
            return self.server_host
        except OSError:
            pass
        try:
            async with asyncio.timeout(self.timeout):  # the system resolver has no deadline of its own
                infos = await asyncio.get_running_loop().getaddrinfo(
                    self.server_host, self.server_port, type=socket.SOCK_STREAM
                )
        except TimeoutError as exc:
            raise TransientProviderError(
                f"cannot resolve RFC2136 server {self.server_host}: no answer within {self.timeout}s"
            ) from exc
        except OSError as exc:
            raise TransientProviderError(f"cannot resolve RFC2136 server {self.server_host}: {exc}") from exc
        return str(infos[0][4][0])

    @property
    def _server(self) -> str:
        return f"{self.server_host}:{self.server_port}"

    def _translate(self, exc: BaseException, what: str) -> ProviderError:
        if isinstance(exc, _TSIG_ERRORS):
            return ProviderError(
                f"{what}: {self._server} rejected TSIG key {self.keyname!r} ({type(exc).__name__}); "
                "check the key name, secret and algorithm"
            )
        if isinstance(exc, dns.exception.Timeout | TimeoutError):
            return TransientProviderError(f"{what}: {self._server} did not answer within {self.timeout}s")
        if isinstance(exc, OSError | EOFError):
            return TransientProviderError(f"{what}: cannot reach {self._server}: {exc or type(exc).__name__}")
        return ProviderError(f"{what}: bad answer from {self._server}: {exc}")

    def _rcode_error(self, rcode: dns.rcode.Rcode, what: str) -> ProviderError:
        text = dns.rcode.to_text(rcode)
        if rcode in _CONFLICT:
            return ChangeConflictError(
                f"{what}: {self._server} answered {text}: {_CONFLICT[rcode]}; nothing changed"
            )
        if rcode in _TRANSIENT:
            return TransientProviderError(f"{what}: {self._server} answered {text}")
        return ProviderError(
            f"{what}: {self._server} answered {text} (is it authoritative for the zone, and does it "
            f"allow updates/transfers with key {self.keyname!r}?)"
        )

    @staticmethod
    def _note_rcode(rcode: dns.rcode.Rcode) -> None:
        trace.get_current_span().set_attribute("dns.response_code", dns.rcode.to_text(rcode))


def _owner(endpoint: Endpoint) -> dns.name.Name:
    try:
        return dns.name.from_text(norm_name(endpoint.dns_name) + ".")
    except dns.exception.DNSException as exc:
        raise ProviderError(f"{endpoint.dns_name!r} is not a valid DNS name: {exc}") from exc


def _targets(endpoint: Endpoint) -> list[str]:
    if endpoint.record_type in _NAME_TARGETS:
        return [norm_name(t) + "." for t in endpoint.targets]
    return list(endpoint.targets)


def _target_text(rtype: str, rdata: object) -> str:
    if rtype in _NAME_TARGETS:
        return str(rdata.target.to_text(omit_final_dot=True)).lower()  # type: ignore[attr-defined]
    return str(rdata.to_text())  # type: ignore[attr-defined]
