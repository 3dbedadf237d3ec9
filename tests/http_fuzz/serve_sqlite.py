"""`python -m tests.http_fuzz.serve_sqlite DATA_DIR MAX_BODY`: the API over a SqliteStore on 127.0.0.1.

Binds a free port, prints it on stdout, and serves until its stdin closes, so it cannot outlive the test
process that started it. Run as its own process so the fuzzer's data generation and the server do not
take turns on one interpreter lock.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import uvicorn
from prometheus_client import CollectorRegistry

from app.api.main import create_app
from app.settings import Settings
from app.stores.sqlite import SqliteStore


async def serve(data_dir: Path, max_body: int) -> None:
    store = SqliteStore(data_dir)
    await store.start()
    try:
        settings = Settings(gslb_max_body_bytes=max_body, api_address="127.0.0.1:0")
        app = create_app(settings=settings, store=store, metrics_registry=CollectorRegistry())
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.005)
        port = server.servers[0].sockets[0].getsockname()[1]
        sys.stdout.write(f"{port}\n")
        sys.stdout.flush()
        await asyncio.to_thread(sys.stdin.read)  # returns at EOF: the parent closed the pipe or died
        server.should_exit = True
        await task
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(serve(Path(sys.argv[1]), int(sys.argv[2])))
