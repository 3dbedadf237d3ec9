"""The committed OpenAPI document (openapi/openapi.json): rendered from the app, byte for byte stable.

Regenerate with `gslb openapi > openapi/openapi.json`; a test fails when the committed file and the app
disagree.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from app.api.main import create_app
from app.domain.gslb import Gslb, GslbStatus
from app.settings import Settings
from app.stores.base import ObjectKey, Unavailable, WatchEvent


class _NoStore:
    """Stands in for a store when only the document is rendered: nothing is ever read or written."""

    def _refuse(self) -> Unavailable:
        return Unavailable("no store: this app instance only renders the OpenAPI document")

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def get(self, key: ObjectKey) -> Gslb:
        raise self._refuse()

    async def list(self, group: str, namespace: str | None = None) -> tuple[list[Gslb], str]:
        raise self._refuse()

    async def create(self, gslb: Gslb, *, dry_run: bool = False) -> Gslb:
        raise self._refuse()

    async def update(self, gslb: Gslb, *, dry_run: bool = False) -> Gslb:
        raise self._refuse()

    async def update_status(
        self,
        key: ObjectKey,
        status: GslbStatus,
        resource_version: str | None = None,
        *,
        dry_run: bool = False,
    ) -> Gslb:
        raise self._refuse()

    async def write_status(self, key: ObjectKey, status: GslbStatus) -> None:
        raise self._refuse()

    async def delete(
        self,
        key: ObjectKey,
        resource_version: str | None = None,
        *,
        dry_run: bool = False,
        propagation: str | None = None,
    ) -> Gslb:
        raise self._refuse()

    def watch(self) -> AsyncIterator[WatchEvent]:
        raise self._refuse()


def openapi_text(document: dict[str, object]) -> str:
    """Pretty, sorted, with a trailing newline: the committed file's exact form."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render_openapi(settings: Settings) -> str:
    return openapi_text(create_app(settings=settings, store=_NoStore()).openapi())
