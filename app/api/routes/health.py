"""Liveness, readiness and Prometheus metrics, as a Kubernetes probe and a scraper expect them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

router = APIRouter(tags=["health"])

# The classic text format: every Prometheus version scrapes it.
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_TEXT = {"content": {"text/plain": {"schema": {"type": "string"}}}}


@router.get("/healthz", name="healthz", summary="Liveness", response_class=PlainTextResponse)
async def healthz() -> str:
    """The process is up and serving HTTP."""
    return "ok"


@router.get(
    "/readyz",
    name="readyz",
    summary="Readiness",
    response_class=PlainTextResponse,
    responses={503: {"description": "Not ready yet (the controller has not synced)", **_TEXT}},
)
async def readyz(request: Request) -> PlainTextResponse:
    """Ready to serve: the controller has synced the store."""
    ready: Callable[[], bool] = request.app.state.ready
    if ready():
        return PlainTextResponse("ok")
    return PlainTextResponse("not ready", status_code=503)


@router.get(
    "/metrics",
    name="metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"description": "Prometheus text exposition format", **_TEXT}},
)
async def metrics(request: Request) -> Response:
    """Prometheus metrics (k8gb's names, k8gb.md §8.1)."""
    registry: CollectorRegistry = request.app.state.metrics_registry or REGISTRY
    # Rendering thousands of series takes long enough to stall DNS answers; do it off the event loop
    # (prometheus_client's metrics are thread-safe).
    body = await asyncio.to_thread(generate_latest, registry)
    return Response(body, media_type=METRICS_CONTENT_TYPE)
