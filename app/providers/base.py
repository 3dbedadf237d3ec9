"""The DNS provider contract (as ExternalDNS's): list what you hold, apply a change set whole or fail.

Providers translate; they never compute diffs (domain/plan.py does) and never start spans (the
`traced` wrapper does). Errors say whether a retry can help.
"""

from __future__ import annotations

from typing import Protocol

from app.domain.endpoint import Changes, Endpoint


class ProviderError(Exception):
    """Fatal: retrying the same change will fail the same way (refused, bad credentials, bad data)."""

    transient = False


class TransientProviderError(ProviderError):
    """Timeouts, 5xx, connection refused: retry with backoff."""

    transient = True


class ChangeConflictError(ProviderError):
    """The change set does not fit what the provider holds (create of an existing record, update or
    delete of a missing or since-changed one). Nothing was written; re-read, re-plan, apply again."""


class Provider(Protocol):
    name: str

    async def records(self, zone: str) -> list[Endpoint]:
        """What the provider holds in `zone` that this instance manages."""
        ...

    async def apply(self, zone: str, changes: Changes) -> None:
        """Apply the whole change set or raise; partial application is a bug."""
        ...

    def adjust(self, endpoints: list[Endpoint]) -> list[Endpoint]:
        """Canonicalise desired endpoints so planning sees no spurious diffs (identity by default)."""
        ...
