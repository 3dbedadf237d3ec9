"""Fixtures for the crash tests: a real health-checked backend, so recovered Gslbs answer in DNS."""

from __future__ import annotations

from typing import Any

from tests.support import tally
from tests.support.fleet import backend, services_file  # noqa: F401 - fixtures


def pytest_terminal_summary(terminalreporter: Any) -> None:
    tally.report(terminalreporter, "crash")
