"""Fixtures for the health tests: real backends on 127.0.0.1 that stop with the test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.health_backends import HttpBackend, Stepper, TcpListener


@pytest.fixture
async def http_backend() -> AsyncIterator[HttpBackend]:
    backend = HttpBackend()
    await backend.start()
    yield backend
    await backend.stop()


@pytest.fixture
async def tcp_listener() -> AsyncIterator[TcpListener]:
    listener = TcpListener()
    await listener.open()
    yield listener
    await listener.close()


@pytest.fixture
def stepper() -> Stepper:
    return Stepper()
