"""One live API server (real uvicorn, real SqliteStore in a temporary directory) per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.http_fuzz.live import LiveApi, live_api
from tests.http_fuzz.tally import TALLY


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    with live_api(tmp_path_factory.mktemp("http-fuzz")) as api:
        yield api


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TALLY.requests or TALLY.hostile_cases:
        terminalreporter.write_line(TALLY.summary())
