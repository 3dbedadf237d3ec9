"""Typed dependencies (style.md §A3): handlers list `StoreDep`, `SettingsDep`, `WriterDep`, never Depends().

Everything comes from `app.state`, filled by `create_app`; tests may swap any of them with
`app.dependency_overrides`. Authorization (`authorize_request`) runs for every Gslb operation: the app
adds it to the whole router, so reads are judged too (open in embedded mode, reviewed in kubernetes
mode); `WriterDep` on the writes documents the bearer token in OpenAPI.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.api.auth import Authorizer, bearer_token, refusal
from app.api.errors import ApiError
from app.domain.gslb import PLURAL
from app.domain.status import StatusDetails, failure
from app.settings import Settings
from app.stores.base import GslbStore, StoreError, TooManyRequests

_bearer = HTTPBearer(
    auto_error=False,
    description="Required for writes (POST, PUT, PATCH, DELETE) when GSLB_API_TOKEN is set; reads are open.",
)

_VERBS = {
    "GET": "get",
    "HEAD": "get",
    "POST": "create",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}

Target = tuple[str, str, str, str | None, str | None]  # verb, group, resource, namespace, name


def get_store(request: Request) -> GslbStore:
    store: GslbStore = request.app.state.store
    return store


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


StoreDep = Annotated[GslbStore, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def request_target(request: Request) -> Target | None:
    """What a request does in Kubernetes terms, from its route; None for anything but a Gslb operation."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not route.include_in_schema:
        return None  # health, docs, and the hidden 405 answerers stay open
    parts = route.path.strip("/").split("/")
    if len(parts) < 4 or parts[0] != "apis" or PLURAL not in parts:
        return None
    verb = _VERBS.get(request.method)
    if verb is None:
        return None
    name = request.path_params.get("name")
    if verb == "get" and name is None:
        verb = "list"
    resource = PLURAL + ("/status" if parts[-1] == "status" else "")
    return verb, parts[1], resource, request.path_params.get("namespace"), name


async def authorize_request(request: Request) -> None:
    """401/403 unless the authorizer allows this Gslb operation; once per request (memoised)."""
    if getattr(request.state, "authorized", False):
        return
    target = request_target(request)
    if target is not None:
        authorizer: Authorizer = request.app.state.authorizer
        token = bearer_token(request.headers.get("authorization"))
        try:
            decision = await authorizer.authorize(token, *target)
        except TooManyRequests as exc:  # worded as the API server's priority and fairness words it
            details = StatusDetails(retry_after_seconds=exc.retry_after)
            message = f"Too many requests, please try again later: {exc}"
            status = failure(429, "TooManyRequests", message, details)
            raise ApiError(status, {"Retry-After": str(exc.retry_after)}) from exc
        except StoreError as exc:
            status = failure(503, "ServiceUnavailable", f"cannot authorize the request now: {exc}")
            raise ApiError(status, {"Retry-After": "1"}) from exc
        if not decision.allowed:
            raise refusal(decision, *target)
    request.state.authorized = True


async def require_writer(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Declared by every write: documents the bearer token; the check is `authorize_request`'s."""
    await authorize_request(request)


WriterDep = Annotated[None, Depends(require_writer)]
