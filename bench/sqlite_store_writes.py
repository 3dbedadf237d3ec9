"""How fast the embedded store acknowledges durable writes (WAL, synchronous=FULL), alone and via the API.

Prints figures; asserts nothing. Run: .venv/bin/python bench/sqlite_store_writes.py
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

import httpx
import uvicorn

from app.api.main import create_app
from app.settings import Settings
from app.stores.sqlite import SqliteStore
from tests.support.gslb_factory import gslb_body, make_gslb

N = 300


async def store_figures(data_dir: Path) -> None:
    store = SqliteStore(data_dir / "store")
    await store.start()
    try:
        start = time.perf_counter()
        for i in range(N):
            await store.create(make_gslb(f"seq-{i}"))
        sequential = N / (time.perf_counter() - start)
        start = time.perf_counter()
        await asyncio.gather(*(store.create(make_gslb(f"par-{i}")) for i in range(N)))
        concurrent = N / (time.perf_counter() - start)
        start = time.perf_counter()
        for _ in range(20):
            await store.list("k8gb.io")
        list_ms = (time.perf_counter() - start) / 20 * 1000
    finally:
        await store.close()
    print(f"store create, one at a time: {sequential:8.0f}/s ({1000 / sequential:.2f} ms each)")
    print(f"store create, {N} concurrent: {concurrent:8.0f}/s")
    print(f"store list of {2 * N} objects: {list_ms:8.1f} ms")


async def api_figures(data_dir: Path) -> None:
    store = SqliteStore(data_dir / "api")
    await store.start()
    app = create_app(settings=Settings(), store=store)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}/apis/k8gb.io/v1beta1/namespaces/bench/gslbs"
    try:
        async with httpx.AsyncClient() as client:
            start = time.perf_counter()
            for i in range(N):
                response = await client.post(url, json=gslb_body(f"api-{i}", namespace="bench"))
                assert response.status_code == 201
            posts = N / (time.perf_counter() - start)
            start = time.perf_counter()
            for i in range(N):
                await client.get(f"{url}/api-{i}")
            gets = N / (time.perf_counter() - start)
    finally:
        server.should_exit = True
        await task
        await store.close()
    print(f"API POST (201, durable), one client: {posts:8.0f}/s")
    print(f"API GET, one client:                 {gets:8.0f}/s")
    print(f"ratio GET/POST: {gets / posts:.1f}")


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        await store_figures(Path(tmp))
        await api_figures(Path(tmp))


if __name__ == "__main__":
    asyncio.run(main())
