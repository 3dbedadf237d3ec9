"""A real API server for the HTTP fuzz tests: `serve_sqlite` in a child process, and a request counter.

The counter is fed by the test's HTTP clients (a requests response hook, an httpx request hook), so a test
can report how many requests it really sent.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import requests

_REPO = Path(__file__).resolve().parents[2]
_START_TIMEOUT = 20.0


@dataclass
class RequestCounter:
    total: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, *_: Any, **__: Any) -> None:
        with self._lock:
            self.total += 1


@dataclass(frozen=True)
class LiveApi:
    base_url: str
    counter: RequestCounter
    max_body: int

    def session(self) -> requests.Session:
        """A requests session whose every response is counted."""
        http = requests.Session()
        http.hooks["response"].append(self.counter.count)
        return http

    def client(self, timeout: float = 20.0) -> httpx.Client:
        """An httpx client on the server whose every request is counted."""
        return httpx.Client(
            base_url=self.base_url, timeout=timeout, event_hooks={"request": [self.counter.count]}
        )


@contextlib.contextmanager
def live_api(data_dir: Path, *, max_body: int = 1_048_576) -> Iterator[LiveApi]:
    """Run the API on 127.0.0.1 (free port) until the block ends; the store lives in `data_dir`."""
    command = [sys.executable, "-m", "tests.http_fuzz.serve_sqlite", str(data_dir), str(max_body)]
    process = subprocess.Popen(command, cwd=_REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdin is not None and process.stdout is not None
    try:
        port: list[str] = []
        reader = threading.Thread(target=lambda: port.append(process.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(_START_TIMEOUT)
        if not port or not port[0].strip().isdigit():
            raise RuntimeError(f"API server did not start (exit code {process.poll()})")
        yield LiveApi(f"http://127.0.0.1:{port[0].strip()}", RequestCounter(), max_body)
    finally:
        process.stdin.close()  # the server's signal to stop
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        process.stdout.close()
