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
from opentelemetry import trace

from app.peers import wire
from app.peers.discovery import PeerDirectory

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


async def _notify_one(name: str, host: str, port: int, timeout: float, tracer: trace.Tracer) -> NotifyResult:
    server = f"{host}:{port}"
    with wire.client_span(tracer, "peer.notify", qname=name, qtype="SOA", host=host, port=port) as span:
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
    names: Sequence[str],
    peers: Sequence[tuple[str, int]],
    timeout: float = 1.0,
    *,
    tracer: trace.Tracer | None = None,
) -> list[NotifyResult]:
    """NOTIFY every name to every peer server concurrently; waits at most about `timeout`."""
    jobs = [
        _notify_one(name, host, port, timeout, tracer or wire.default_tracer())
        for host, port in dict.fromkeys(peers)
        for name in dict.fromkeys(names)
    ]
    return list(await asyncio.gather(*jobs))


class PeerNotifier:
    """The controller's Notifier: NOTIFY the first server of every resolved peer, in the background.

    `notify()` returns at once so a reconcile never waits on a dead peer; the sends keep the
    caller's trace context (tasks copy it), so their spans still sit under the reconcile span.
    """

    def __init__(self, directory: PeerDirectory, timeout: float = 1.0) -> None:
        self.directory = directory
        self.timeout = timeout
        self.tracer = directory.tracer
        self._pending: set[asyncio.Task[list[NotifyResult]]] = set()

    async def notify(self, names: Sequence[str]) -> None:
        if not names:
            return
        task = asyncio.create_task(self._send(list(names)), name="peer-notify")
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _send(self, names: list[str]) -> list[NotifyResult]:
        targets = await self.directory.notify_targets()
        return await send_notify(names, targets, self.timeout, tracer=self.tracer) if targets else []

    async def drain(self) -> None:
        """Wait for the sends in flight (tests, orderly shutdown)."""
        await asyncio.gather(*self._pending, return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._pending):
            task.cancel()
        await self.drain()
