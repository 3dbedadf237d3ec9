"""What the reliability tests did, counted from the tests themselves and printed at the end of a run.

The closing note of the reliability work quotes these lines (faults injected, kills survived, writes
acknowledged), so they are measured, not typed in.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

COUNTS: Counter[tuple[str, str]] = Counter()
NOTES: dict[tuple[str, str], str] = {}


def add(area: str, what: str, n: int = 1) -> None:
    COUNTS[(area, what)] += n


def note(area: str, what: str, text: str) -> None:
    """A measured figure that is not a count (a latency, say)."""
    NOTES[(area, what)] = text


def report(terminalreporter: Any, area: str) -> None:
    """Call from a `pytest_terminal_summary` hook: one line per count of `area`."""
    lines = [f"{what}: {n}" for (where, what), n in sorted(COUNTS.items()) if where == area]
    lines += [f"{what}: {text}" for (where, what), text in sorted(NOTES.items()) if where == area]
    if lines:
        terminalreporter.write_sep("-", f"reliability: {area}")
        for line in lines:
            terminalreporter.write_line(line)
