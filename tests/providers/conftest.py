"""Fixtures for the provider tests: a real BIND9, a fake Infoblox WAPI, and the contract's subjects."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from app.providers.base import Provider
from app.providers.infoblox import InfobloxProvider
from app.providers.inmemory import InMemoryProvider
from app.providers.rfc2136 import Rfc2136Provider
from tests.support.bind9 import Bind9, bind9  # noqa: F401  (fixture)
from tests.support.wapi import FakeWapi

PARENT = "example.com"
ZONE = "cloud.example.com"


@pytest.fixture
async def wapi() -> AsyncIterator[FakeWapi]:
    async with FakeWapi() as server:
        yield server


def infoblox_for(wapi: FakeWapi, **overrides: object) -> InfobloxProvider:
    options: dict[str, object] = {
        "wapi_version": "2.3.1",
        "ttl": 30,
        "timeout": 2.0,
        "zones": [ZONE],
        "registry": CollectorRegistry(),
    }
    options.update(overrides)
    return InfobloxProvider(wapi.url, wapi.username, wapi.password, **options)  # type: ignore[arg-type]


def rfc2136_for(server: Bind9, **overrides: object) -> Rfc2136Provider:
    assert server.key is not None
    options: dict[str, object] = {
        "keyname": server.key.name,
        "secret": server.key.secret,
        "algorithm": server.key.algorithm,
        "timeout": 2.0,
    }
    options.update(overrides)
    return Rfc2136Provider(server.host, server.port, **options)  # type: ignore[arg-type]


@dataclass
class Subject:
    """A provider under the contract suite, plus the parent zone its records live in."""

    provider: Provider
    parent: str = PARENT


@pytest.fixture
def inmemory() -> InMemoryProvider:
    return InMemoryProvider()


@pytest.fixture
async def rfc2136(bind9: Bind9) -> Rfc2136Provider:  # noqa: F811
    return rfc2136_for(bind9)


@pytest.fixture
async def infoblox(wapi: FakeWapi) -> AsyncIterator[InfobloxProvider]:
    provider = infoblox_for(wapi)
    yield provider
    await provider.aclose()


@pytest.fixture(params=["inmemory", "rfc2136", "infoblox"])
def subject(request: pytest.FixtureRequest) -> Subject:
    """The same contract for every provider: the in-memory oracle, BIND9 over RFC2136, fake Infoblox."""
    return Subject(request.getfixturevalue(request.param))


@dataclass
class Spans:
    """A private SDK tracer provider (tests only) whose finished spans can be read back."""

    provider: TracerProvider
    exporter: InMemorySpanExporter

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.exporter.get_finished_spans() if s.name == name]


@pytest.fixture
def spans() -> Iterator[Spans]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield Spans(provider, exporter)
    provider.shutdown()
