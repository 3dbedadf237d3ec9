"""A real uvicorn server on 127.0.0.1 (free port) over a real SqliteStore, per test."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
import uvicorn
from prometheus_client import CollectorRegistry

from app.api.connections import guarded_protocol
from app.api.main import create_app
from app.settings import Settings
from app.stores.sqlite import SqliteStore
from tests.support.api_server import Api, ServeFactory


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[ServeFactory]:
    """`await serve(token=..., max_body=...)` starts an API server; it is stopped after the test.

    `header_seconds` and `max_connections` stand for GSLB_API_HEADER_TIMEOUT_SECONDS and
    GSLB_API_MAX_CONNECTIONS."""
    running: list[tuple[uvicorn.Server, asyncio.Task[None], SqliteStore, httpx.AsyncClient]] = []

    async def start(
        *,
        token: str | None = None,
        max_body: int = 1_048_576,
        ready: Callable[[], bool] | None = None,
        registry: CollectorRegistry | None = None,
        header_seconds: float | None = None,
        max_connections: int | None = None,
    ) -> Api:
        store = SqliteStore(tmp_path / f"data-{len(running)}")
        await store.start()
        settings = Settings(gslb_api_token=token, gslb_max_body_bytes=max_body, api_address="127.0.0.1:0")
        app = create_app(settings=settings, store=store, ready=ready, metrics_registry=registry)
        http = guarded_protocol(
            header_seconds or settings.gslb_api_header_timeout_seconds,
            max_connections or settings.gslb_api_max_connections,
        )  # the protocol `gslb serve` runs
        config = uvicorn.Config(app, http=http, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.005)
        port = server.servers[0].sockets[0].getsockname()[1]
        base_url = f"http://127.0.0.1:{port}"
        client = httpx.AsyncClient(base_url=base_url, timeout=10)
        running.append((server, task, store, client))
        return Api(base_url, app, store, client)

    yield start

    for server, task, store, client in running:
        await client.aclose()
        # uvicorn's own shutdown polls in 0.1 s steps; with lifespan off and the client gone there is
        # nothing to drain, so stop the loop task and close the listener directly.
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        for listener in server.servers:
            listener.close()
            await asyncio.wait_for(listener.wait_closed(), 5)
        await store.close()


@pytest.fixture
async def api(serve: ServeFactory) -> Api:
    return await serve()
