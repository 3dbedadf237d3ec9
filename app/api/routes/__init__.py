"""One router aggregating every resource's router (style.md §A3.2)."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.routes import discovery, health
from app.api.routes.gslbs import gslb_router
from app.domain.gslb import GROUPS

api_router = APIRouter()
api_router.include_router(health.router)
api_router.include_router(discovery.router)
for _group in GROUPS:
    api_router.include_router(gslb_router(_group))
