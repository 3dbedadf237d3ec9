"""Many Gslbs against one real `gslb serve`: write them while something breaks, then prove nothing was lost.

Used by the fault, crash and load tests. A `Writer` keeps POSTing distinct Gslbs and records which
ones were acknowledged (201) and which were refused; `check_converged` then asks the API and the
built-in DNS server whether every acknowledged Gslb is stored exactly once, parses, and answers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.gslb_factory import gslb_body
from tests.support.instance import Backend, Instance, a_records, services_yaml

NAMESPACE = "faults"
COLLECTION = f"/apis/k8gb.io/v1beta1/namespaces/{NAMESPACE}/gslbs"
SERVICE = f"{NAMESPACE}/frontend"
ZONE = "cloud.example.com"
EXPOSED = {"10.0.0.1", "10.0.0.2"}


def host_of(name: str) -> str:
    return f"{name}.{ZONE}"


def manifest(name: str, **extra_metadata: Any) -> dict[str, Any]:
    """A round-robin Gslb with one host, backed by the shared `faults/frontend` service."""
    body = gslb_body(name, namespace=NAMESPACE, host=host_of(name), service="frontend", dnsTtlSeconds=30)
    body["metadata"].update(extra_metadata)
    return body


def settings(services_file: str, **extra: str) -> dict[str, str]:
    """gslb serve settings every fleet test shares: one zone, two exposed IPs, fast probes."""
    return {
        "GSLB_SERVICES_FILE": services_file,
        "CLUSTER_GEO_TAG": "eu",
        "DNS_ZONES": f"example.com:{ZONE}:30",
        "CLUSTER_EXPOSED_IPS": ",".join(sorted(EXPOSED)),
        **extra,
    }


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    """The one real, health-checked backend behind `faults/frontend` (a test may stop and restart it)."""
    server = await Backend().start()
    yield server
    await server.stop()


@pytest.fixture
def services_file(tmp_path: Path, backend: Backend) -> str:
    """A services file naming `backend` as the endpoint of `faults/frontend`, probed every 0.2 s."""
    path = tmp_path / "services.yaml"
    path.write_text(services_yaml({SERVICE: [f"127.0.0.1:{backend.port}"]}))
    return str(path)


@dataclass
class Writer:
    """POSTs `<prefix>-<i>` one after another until stopped; remembers every answer it got."""

    client: httpx.AsyncClient
    prefix: str
    pause: float = 0.05
    acked: list[str] = field(default_factory=list)
    refused: dict[str, int] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)
    """Writes that got no answer (connection lost, timed out): they may or may not have landed."""
    statuses: Counter[int] = field(default_factory=Counter)
    _task: asyncio.Task[None] | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    def start(self) -> Writer:
        self._task = asyncio.create_task(self._run(), name=f"writer {self.prefix}")
        return self

    async def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            name = f"{self.prefix}-{i}"
            i += 1
            try:
                response = await self.client.post(COLLECTION, json=manifest(name))
            except httpx.HTTPError:
                self.unknown.append(name)
                continue
            self.statuses[response.status_code] += 1
            if response.status_code == 201:
                self.acked.append(name)
            else:
                self.refused[name] = response.status_code
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.pause)

    async def stop(self) -> Writer:
        self._stop.set()
        if self._task is not None:
            await self._task
        return self

    async def has_acked(self, count: int) -> bool:
        """For `eventually`: at least `count` writes acknowledged so far."""
        return len(self.acked) >= count

    async def __aenter__(self) -> Writer:
        return self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def metric(text: str, name: str, /, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels` (0 when there are none)."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


async def metrics(client: httpx.AsyncClient) -> str:
    response = await client.get("/metrics")
    assert response.status_code == 200
    return response.text


async def listed(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get(COLLECTION)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def conditions(client: httpx.AsyncClient, names: Iterable[str], kind: str) -> dict[str, str | None]:
    """`{name: status of its condition `kind`}` for every name, from one list call."""
    by_name = {item["metadata"]["name"]: item for item in await listed(client)}
    found: dict[str, str | None] = {}
    for name in names:
        status = (by_name.get(name) or {}).get("status") or {}
        cond = next((c for c in status.get("conditions") or [] if c["type"] == kind), None)
        found[name] = None if cond is None else cond["status"]
    return found


async def condition(client: httpx.AsyncClient, name: str, kind: str) -> dict[str, Any] | None:
    """The Gslb's status condition of type `kind`, or None."""
    response = await client.get(f"{COLLECTION}/{name}")
    assert response.status_code == 200, response.text
    conditions = (response.json().get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == kind), None)


async def unanswered(instance: Instance, names: Iterable[str], expected: set[str] = EXPOSED) -> list[str]:
    """The names whose host does not (yet) answer `expected` from the built-in DNS server."""
    names = list(names)
    limit = asyncio.Semaphore(32)

    async def answers(name: str) -> bool:
        async with limit:
            with contextlib.suppress(Exception):
                return await a_records(instance.dns, host_of(name)) == expected
            return False

    results = await asyncio.gather(*(answers(n) for n in names))
    return [n for n, ok in zip(names, results, strict=True) if not ok]


async def check_converged(
    client: httpx.AsyncClient,
    instance: Instance,
    acked: Iterable[str],
    *,
    may_exist: Iterable[str] = (),
    expected: set[str] = EXPOSED,
    timeout: float = 20.0,
) -> list[dict[str, Any]]:
    """Every acked Gslb stored exactly once and answering `expected` in DNS; nothing else but `may_exist`.

    Returns the listed items. `may_exist` names writes whose outcome the client never learned.
    """
    acked = list(acked)
    items = await listed(client)
    counts = Counter(item["metadata"]["name"] for item in items)
    assert not [n for n, c in counts.items() if c > 1], f"duplicated: {counts.most_common(5)}"
    uids = Counter(item["metadata"]["uid"] for item in items)
    assert all(c == 1 for c in uids.values()), "two objects share a uid"
    missing = sorted(set(acked) - set(counts))
    assert not missing, f"{len(missing)} acknowledged Gslbs lost: {missing[:10]}"
    unexpected = sorted(set(counts) - set(acked) - set(may_exist))
    assert not unexpected, f"Gslbs nobody created: {unexpected[:10]}"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while pending := await unanswered(instance, acked, expected):
        assert loop.time() < deadline, f"{len(pending)} Gslbs never answered in DNS: {pending[:10]}"
        await asyncio.sleep(0.2)
    return items
