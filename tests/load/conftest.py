"""Fixtures for the load tests: a health-checked backend in a process of its own.

Under load the test's own event loop is busy driving a thousand requests; a backend served from that
loop would miss its probes and turn the service unhealthy, which is the test's fault, not pygslb's.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import fleet, tally
from tests.support.instance import free_port, services_yaml


@pytest.fixture
async def services_file(tmp_path: Path) -> AsyncIterator[str]:
    """A services file naming a `python -m http.server` backend (it answers 200 on /)."""
    port = free_port()
    root = tmp_path / "www"
    root.mkdir()
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "http.server",
        str(port),
        "--bind",
        "127.0.0.1",
        "--directory",
        str(root),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            await asyncio.sleep(0.05)
        path = tmp_path / "services.yaml"
        path.write_text(services_yaml({fleet.SERVICE: [f"127.0.0.1:{port}"]}))
        yield str(path)
    finally:
        server.terminate()
        await server.wait()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    tally.report(terminalreporter, "load")
