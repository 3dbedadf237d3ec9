"""A multi-cluster world of real processes: BIND9 as the edge, one `gslb serve` per geo tag.

Shared by the scenario tests (through the `cluster` fixture) and by bench/failover.py.
Every cluster's DNS listens on its own loopback address and the edge server's port, which is how
k8gb reaches a peer: the glue address of `gslb-ns-<tag>-cloud.example.com` on the edge's port.
A client reaches a cluster either directly or the way a resolver does, through BIND's referral.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dns.edns
import dns.message
import dns.rcode
import dns.rdatatype
import httpx

from tests.support.bind9 import Bind9, generate_key, zone_text
from tests.support.instance import (
    Backend,
    Instance,
    eventually,
    free_port,
    instance_env,
    query,
    services_yaml,
)

PARENT = "example.com"
ZONE = "cloud.example.com"
NAMESPACE = "test-gslb"
SERVICE = "frontend-podinfo"
ADDRESSES = {"eu": "127.0.0.2", "us": "127.0.0.3", "za": "127.0.0.4"}
"""Where each cluster's DNS listens (and its glue A in the edge zone)."""
EXPOSED = {"eu": "10.0.1.1", "us": "10.0.2.1", "za": "10.0.3.1"}
"""CLUSTER_EXPOSED_IPS: the targets each cluster contributes (data only, nothing listens there)."""
GEOIP_CIDRS = "10.0.1.0/24=eu,10.0.2.0/24=us,10.0.3.0/24=za,192.0.2.0/24=eu,198.51.100.0/24=us"

Answer = frozenset[str] | None
"""A targets of one answer; None for NXDOMAIN or an answer without A records."""


def glue_name(tag: str) -> str:
    return f"gslb-ns-{tag}-cloud.{PARENT}"


def ips(*tags: str) -> frozenset[str]:
    return frozenset(EXPOSED[t] for t in tags)


def manifest(name: str, host: str, strategy: Mapping[str, Any]) -> dict[str, Any]:
    """A Gslb as k8gb users write it: an embedded ingress rule for `host` backed by frontend-podinfo."""
    backend = {"service": {"name": SERVICE, "port": {"name": "http"}}}
    return {
        "apiVersion": "k8gb.io/v1beta1",
        "kind": "Gslb",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "ingress": {
                "ingressClassName": "nginx",
                "rules": [
                    {
                        "host": host,
                        "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]},
                    }
                ],
            },
            "strategy": {"dnsTtlSeconds": 30, **strategy},
        },
    }


def ecs_option(subnet: str) -> dns.edns.ECSOption:
    """EDNS0 CLIENT-SUBNET for `a.b.c.d/len`, as a resolver forwards it."""
    address, _, length = subnet.partition("/")
    return dns.edns.ECSOption(address, int(length or 32))


def a_set(response: dns.message.Message) -> Answer:
    if response.rcode() != dns.rcode.NOERROR:
        return None
    found = {rr.address for rrset in response.answer if rrset.rdtype == dns.rdatatype.A for rr in rrset}
    return frozenset(found) or None


async def ask(server: tuple[str, int], name: str, ecs: str | None = None) -> dns.message.Message:
    """One non-recursive A query, with ECS when given."""
    options = {"use_edns": 0, "options": [ecs_option(ecs)]} if ecs else {}
    return await query(server, name, "A", flags=0, **options)


class HeldBackend(Backend):
    """A Backend that keeps its port while stopped: bound, not listening, so probes get "connection
    refused" as from a killed process, yet no other process can take the port before the restart."""

    _hold: socket.socket | None = None

    async def stop(self) -> None:
        await super().stop()
        if self.port and self._hold is None:
            hold = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            hold.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            hold.bind((self.host, self.port))
            self._hold = hold

    async def restart(self) -> None:
        if self._hold is not None:
            self._hold.close()
            self._hold = None
        await self.start()

    async def close(self) -> None:
        await super().stop()
        if self._hold is not None:
            self._hold.close()
            self._hold = None


@dataclass
class Member:
    """One cluster: its `gslb serve`, its backend and the addresses it answers with."""

    tag: str
    address: str
    backend: HeldBackend
    instance: Instance

    @property
    def dns(self) -> tuple[str, int]:
        return self.instance.dns


@dataclass
class Cluster:
    """BIND9 edge + members sharing one port; every observation here is a DNS answer."""

    edge: Bind9
    port: int
    members: dict[str, Member]

    @property
    def edge_server(self) -> tuple[str, int]:
        return (self.edge.host, self.port)

    # --- the REST API, as a user applies the same Gslb in every cluster ----------------------------

    async def apply(self, body: Mapping[str, Any], on: Iterable[str] | None = None) -> None:
        path = f"/apis/k8gb.io/v1beta1/namespaces/{body['metadata']['namespace']}/gslbs"
        async with httpx.AsyncClient(timeout=10) as client:
            for tag in on or self.members:
                created = await client.post(self.members[tag].instance.api + path, json=body)
                assert created.status_code == 201, f"{tag}: {created.status_code} {created.text}"

    async def delete(self, name: str, on: Iterable[str] | None = None, namespace: str = NAMESPACE) -> None:
        path = f"/apis/k8gb.io/v1beta1/namespaces/{namespace}/gslbs/{name}"
        async with httpx.AsyncClient(timeout=10) as client:
            for tag in on or self.members:
                deleted = await client.delete(self.members[tag].instance.api + path)
                assert deleted.status_code == 200, f"{tag}: {deleted.status_code} {deleted.text}"

    # --- backends ---------------------------------------------------------------------------------

    async def stop_backend(self, *tags: str) -> None:
        for tag in tags:
            await self.members[tag].backend.stop()

    async def start_backend(self, *tags: str) -> None:
        for tag in tags:
            await self.members[tag].backend.restart()

    # --- DNS --------------------------------------------------------------------------------------

    async def delegated_names(self) -> frozenset[str]:
        """The NS names BIND refers `cloud.example.com` to."""
        response = await ask(self.edge_server, ZONE)
        return frozenset(
            rr.target.to_text(omit_final_dot=True)
            for rrset in (*response.answer, *response.authority)
            if rrset.rdtype == dns.rdatatype.NS
            for rr in rrset
        )

    async def direct(self, tag: str, name: str, ecs: str | None = None) -> Answer:
        return a_set(await ask(self.members[tag].dns, name, ecs))

    async def through_edge(self, name: str, ecs: str | None = None) -> dict[str, Answer]:
        """Resolve as a resolver does: BIND's referral → A of each NS name at BIND → that server on
        the edge's port. One answer per delegated name, since a resolver may pick any of them."""
        referral = await ask(self.edge_server, name)
        assert referral.rcode() == dns.rcode.NOERROR and not referral.answer, referral.to_text()
        answers: dict[str, Answer] = {}
        for ns in sorted(
            rr.target for rrset in referral.authority if rrset.rdtype == dns.rdatatype.NS for rr in rrset
        ):
            glue = a_set(await ask(self.edge_server, ns.to_text()))
            assert glue, f"no glue A for {ns} at the edge"
            for address in sorted(glue):
                answers[f"edge→{ns.to_text(omit_final_dot=True)}@{address}"] = a_set(
                    await ask((address, self.port), name, ecs)
                )
        return answers

    async def answers(self, name: str, ecs: str | None = None) -> dict[str, Answer]:
        """What each cluster answers directly, and what each server reached through BIND answers."""
        seen: dict[str, Answer] = {tag: await self.direct(tag, name, ecs) for tag in self.members}
        seen.update(await self.through_edge(name, ecs))
        return seen

    def everywhere(self, answer: Answer | Mapping[str, Answer]) -> dict[str, Answer]:
        """What `answers()` must be when each cluster answers `answer` (or `answer[tag]`): directly,
        and when a client reaches that cluster through the edge's delegation."""
        per_tag = dict(answer) if isinstance(answer, Mapping) else dict.fromkeys(self.members, answer)
        assert per_tag.keys() == self.members.keys(), f"expected answers for {sorted(self.members)}"
        expected = dict(per_tag)
        for tag, member in self.members.items():
            expected[f"edge→{glue_name(tag)}@{member.address}"] = per_tag[tag]
        return expected

    async def converge(
        self,
        name: str,
        expected: Answer | Mapping[str, Answer],
        *,
        ecs: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        """Poll until every answer is as expected (see `everywhere`); fail with the instances' logs."""
        want = self.everywhere(expected)
        try:
            await eventually(lambda: self.answers(name, ecs), want, timeout=timeout)
        except AssertionError as exc:
            logs = "\n".join(f"--- {t} ---\n{m.instance.log()[-3000:]}" for t, m in self.members.items())
            raise AssertionError(f"{name}: {exc}\n{logs}") from None


async def _stop_all(members: Sequence[Member]) -> None:
    await asyncio.gather(*(m.instance.stop() for m in members), return_exceptions=True)
    await asyncio.gather(*(m.backend.close() for m in members), return_exceptions=True)


@contextlib.asynccontextmanager
async def start_cluster(
    tmp: Path,
    tags: Sequence[str] = ("eu", "us"),
    *,
    probe_interval: float = 0.2,
    delegation_timeout: float = 20.0,
    **env: str,
) -> AsyncIterator[Cluster]:
    """BIND9 + one `gslb serve` per tag, delegated and discovering each other; `env` is added to each."""
    addresses = [ADDRESSES[t] for t in tags]
    port = free_port("127.0.0.1", *addresses)
    key = await generate_key("pygslb-e2e")
    secret = tmp / "tsig.secret"
    secret.write_text(key.secret + "\n")
    secret.chmod(0o600)
    async with Bind9({PARENT: zone_text(PARENT)}, key=key, port=port) as edge:
        members: list[Member] = []
        try:
            for tag in tags:
                backend = HeldBackend()
                await backend.start()
                (tmp / tag).mkdir(parents=True, exist_ok=True)
                services = tmp / tag / "services.yaml"
                services.write_text(
                    services_yaml({f"{NAMESPACE}/{SERVICE}": [f"127.0.0.1:{backend.port}"]}, probe_interval)
                )
                settings = {
                    "CLUSTER_GEO_TAG": tag,
                    "EXT_GSLB_CLUSTERS_GEO_TAGS": ",".join(tags),
                    "DNS_ADDRESS": f"{ADDRESSES[tag]}:{port}",
                    "DNS_ZONES": f"{PARENT}:{ZONE}:30",
                    "CLUSTER_EXPOSED_IPS": EXPOSED[tag],
                    "GSLB_SERVICES_FILE": str(services),
                    "EDGE_DNS_SERVERS": f"127.0.0.1:{port}",
                    "EDGE_DNS_TYPE": "rfc2136",
                    "RFC2136_HOST": f"127.0.0.1:{port}",
                    "RFC2136_TSIG_KEYNAME": key.name,
                    "RFC2136_TSIG_SECRET_FILE": str(secret),
                    "PEER_REFRESH_SECONDS": "0.5",
                    "ZONE_DELEGATION_RECONCILE_REQUEUE_SECONDS": "1",
                    **env,
                }
                instance = Instance(instance_env(tmp, tag, **settings), tmp / tag / "serve.log")
                members.append(Member(tag, ADDRESSES[tag], backend, instance))
            started = await asyncio.gather(*(m.instance.start() for m in members), return_exceptions=True)
            for outcome in started:
                if isinstance(outcome, BaseException):
                    raise outcome
            cluster = Cluster(edge, port, {m.tag: m for m in members})
            await eventually(
                cluster.delegated_names, frozenset(glue_name(t) for t in tags), timeout=delegation_timeout
            )
            yield cluster
        finally:
            await _stop_all(members)
