"""405 with an `Allow` header naming every method of a path.

Each method of a path is its own route (one OpenAPI operation each), and Starlette's 405 names only
the first route's methods. A hidden catch-all per path answers the other methods instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter
from fastapi.routing import APIRoute

from app.api.errors import ApiError
from app.domain.status import failure

_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def _refuse(allowed: str) -> Callable[[], Awaitable[None]]:
    async def not_allowed() -> None:
        raise ApiError(failure(405, "MethodNotAllowed", f"allowed methods: {allowed}"), {"Allow": allowed})

    return not_allowed


def add_method_not_allowed(router: APIRouter) -> APIRouter:
    """Call after every route of `router` is declared."""
    by_path: dict[str, set[str]] = {}
    for route in router.routes:
        if isinstance(route, APIRoute):
            by_path.setdefault(route.path.removeprefix(router.prefix), set()).update(route.methods or ())
    for path, methods in by_path.items():
        refuse = _refuse(", ".join(sorted(methods)))
        others = [m for m in _METHODS if m not in methods]
        router.add_api_route(path, refuse, methods=others, include_in_schema=False)
    return router
