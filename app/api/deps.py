"""Typed dependencies (style.md §A3): handlers list `StoreDep`, `SettingsDep`, `WriterDep`, never Depends().

Everything comes from `app.state`, filled by `create_app`; tests may swap any of them with
`app.dependency_overrides`.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.api.errors import ApiError
from app.domain.status import failure
from app.settings import Settings
from app.stores.base import GslbStore

_bearer = HTTPBearer(
    auto_error=False,
    description="Required for writes (POST, PUT, PATCH, DELETE) when GSLB_API_TOKEN is set; reads are open.",
)


def get_store(request: Request) -> GslbStore:
    store: GslbStore = request.app.state.store
    return store


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


StoreDep = Annotated[GslbStore, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def require_writer(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """401 unless the request carries `Authorization: Bearer <GSLB_API_TOKEN>` (when a token is set)."""
    token = settings.api_token()
    if token is None:
        return
    given = credentials.credentials if credentials is not None else ""
    if not hmac.compare_digest(given.encode(), token.encode()):
        message = (
            "a valid bearer token is required for writes" if given else "missing bearer token for a write"
        )
        raise ApiError(failure(401, "Unauthorized", message), {"WWW-Authenticate": 'Bearer realm="pygslb"'})


WriterDep = Annotated[None, Depends(require_writer)]
