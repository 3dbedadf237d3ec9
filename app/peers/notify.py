"""Tell peers at once that our local targets changed: DNS NOTIFY (RFC 1996), sent and forgotten.

Without it a peer notices our change only on its next refresh (PEER_REFRESH_SECONDS) or resync.
NOTIFY is only a hint: the peer re-queries `localtargets-<host>` itself, so a lost NOTIFY costs
latency, never correctness. That is why nothing here raises: failures are logged and returned.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdatatype

from app.peers import wire

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class NotifyResult:
    name: str
    server: str
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def notify_message(name: str) -> dns.message.Message:
    """Opcode NOTIFY, AA set, question `<name> IN SOA` (RFC 1996 §3.7)."""
    message = dns.message.make_query(name, dns.rdatatype.SOA, flags=dns.flags.AA)
    message.set_opcode(dns.opcode.NOTIFY)
    return message


async def _notify_one(name: str, host: str, port: int, timeout: float) -> NotifyResult:
    server = f"{host}:{port}"
    with wire.client_span("peer.notify", qname=name, qtype="SOA", host=host, port=port) as span:
        try:
            response = await wire.exchange(notify_message(name), host, port, timeout, tcp_fallback=False)
            rcode = response.rcode()
            if rcode != dns.rcode.NOERROR:
                text = dns.rcode.to_text(rcode)
                raise wire.ExchangeError(f"answered {text}", text)
        except wire.ExchangeError as exc:
            wire.record_failure(span, exc)
            log.warning("NOTIFY %s to %s failed: %s", name, server, exc.reason)
            return NotifyResult(name, server, exc.reason)
        wire.record_response(span, response, [])
        return NotifyResult(name, server)


async def send_notify(
    names: Sequence[str], peers: Sequence[tuple[str, int]], timeout: float = 1.0
) -> list[NotifyResult]:
    """NOTIFY every name to every peer server concurrently; waits at most about `timeout`."""
    jobs = [
        _notify_one(name, host, port, timeout)
        for host, port in dict.fromkeys(peers)
        for name in dict.fromkeys(names)
    ]
    return list(await asyncio.gather(*jobs))
