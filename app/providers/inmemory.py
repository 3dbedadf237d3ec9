"""The reference provider: a dict per zone, every contract rule enforced, nothing else.

The shared contract suite runs against it first; a real provider is correct when it behaves the
same. Zones spring into existence on first write, as a parent zone that is simply there.
"""

from __future__ import annotations

from app.domain.endpoint import Changes, Endpoint
from app.providers.changeset import Key, applied, canonical, check_against, check_shape, norm_name


class InMemoryProvider:
    name = "inmemory"

    def __init__(self, initial: dict[str, list[Endpoint]] | None = None) -> None:
        self._zones: dict[str, dict[Key, Endpoint]] = {}
        for zone, endpoints in (initial or {}).items():
            self._zones[norm_name(zone)] = {e.key: canonical(e) for e in endpoints}

    async def records(self, zone: str) -> list[Endpoint]:
        held = self._zones.get(norm_name(zone), {})
        return sorted(held.values(), key=lambda e: e.key)

    async def apply(self, zone: str, changes: Changes) -> None:
        check_shape(zone, changes)
        held = self._zones.get(norm_name(zone), {})
        check_against(held, changes)
        self._zones[norm_name(zone)] = applied(held, changes)

    def adjust(self, endpoints: list[Endpoint]) -> list[Endpoint]:
        return endpoints
