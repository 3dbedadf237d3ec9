"""Fixtures for the fault tests: one real health-checked backend and the services file naming it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import fleet, tally
from tests.support.instance import Backend, services_yaml


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    server = await Backend().start()
    yield server
    await server.stop()


@pytest.fixture
def services_file(tmp_path: Path, backend: Backend) -> str:
    path = tmp_path / "services.yaml"
    path.write_text(services_yaml({fleet.SERVICE: [f"127.0.0.1:{backend.port}"]}))
    return str(path)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    tally.report(terminalreporter, "faults")
