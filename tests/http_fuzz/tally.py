"""What the HTTP fuzz tests sent, for the run's closing summary line."""

from __future__ import annotations

from collections import Counter


class Tally:
    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.hostile_kinds: set[str] = set()
        self.hostile_cases = 0
        self.hostile_requests = 0

    def add(self, test: str, requests: int) -> None:
        self.requests[test] += requests

    def add_hostile(self, kind: str, requests: int) -> None:
        self.hostile_kinds.add(kind)
        self.hostile_cases += 1
        self.hostile_requests += requests

    def summary(self) -> str:
        fuzzed = {k: v for k, v in self.requests.items() if k.startswith("test_every_operation[")}
        stateful = self.requests.get("test_stateful_sequences", 0)
        return (
            f"http fuzz: schemathesis {len(fuzzed)} operations, {sum(fuzzed.values())} requests, "
            f"stateful {stateful} requests; hostile requests: {len(self.hostile_kinds)} kinds, "
            f"{self.hostile_cases} refused ({self.hostile_requests} requests with the checks around them)"
        )


TALLY = Tally()
