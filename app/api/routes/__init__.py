"""One router aggregating every resource's router (style.md §A3.2)."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.routes import discovery, health
from app.api.routes.allow import add_method_not_allowed
from app.api.routes.gslbs import gslb_router
from app.domain.gslb import GROUPS

api_router = APIRouter()
api_router.include_router(add_method_not_allowed(health.router))
api_router.include_router(add_method_not_allowed(discovery.router))
for _group in GROUPS:
    api_router.include_router(add_method_not_allowed(gslb_router(_group)))
