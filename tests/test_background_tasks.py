"""A background task of `gslb serve` that dies while the server runs stops the server, non-zero, with the
task's name and traceback in the log at that moment: it used to end silently, and the process went on
serving what that task no longer kept up to date (writes no longer reconciled, DNS no longer restarted)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import threading
from pathlib import Path

import pytest

from tests.support.ports import free_port

pytestmark = pytest.mark.timeout(60)


async def _dies(*args: object) -> None:
    await asyncio.sleep(0.5)
    raise RuntimeError("injected")


@pytest.mark.parametrize(
    ("target", "task", "settings"),
    [
        ("app.controller.runner.Controller._watch", "gslb-watch", {}),
        ("app.dnsserver.process.DnsWorkers._supervise", "dns-worker-0-supervisor", {"DNS_WORKERS": "1"}),
        (
            "app.controller.delegation.DelegationLoop.run",
            "edge-delegation",
            {"EDGE_DNS_TYPE": "rfc2136", "RFC2136_HOST": "127.0.0.1:9"},
        ),
    ],
)
def test_a_dead_background_task_stops_the_server_with_exit_1(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    target: str,
    task: str,
    settings: dict[str, str],
) -> None:
    from app.cli import main

    env = {
        "API_ADDRESS": f"127.0.0.1:{free_port()}",
        "DNS_ADDRESS": f"127.0.0.1:{free_port()}",
        "GSLB_DATA_DIR": str(tmp_path / "data"),
        **settings,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(target, _dies)
    # Bound the run: a server that goes on after its task died is sent SIGTERM (and exits 0).
    deadline = threading.Timer(15, os.kill, (os.getpid(), signal.SIGTERM))
    deadline.start()
    try:
        assert main(["serve"]) == 1
    finally:
        deadline.cancel()
    err = capsys.readouterr().err
    failed = rf" ERR app/runtime\.py:\d+ > background task {task} failed: stopping the server error="
    assert re.search(failed, err), err
    assert 'error="RuntimeError: injected" logger=pygslb\n    Traceback (most recent call last):' in err
    assert "RuntimeError: injected" in err
    assert f"error: gslb serve stopped: background task {task} failed: RuntimeError: injected" in err
    assert err.index("background task") < err.index("shutting down")
