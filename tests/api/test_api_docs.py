"""Swagger UI works offline: its assets come from this server, and a real browser renders the operations."""

from __future__ import annotations

import asyncio
import html
import os
import shutil
from pathlib import Path

import pytest

from tests.support.api_server import Api

GSLB_COLLECTION = "/apis/k8gb.io/v1beta1/namespaces/{namespace}/gslbs"


async def test_docs_page_uses_local_assets_only(api: Api) -> None:
    page = await api.client.get("/docs")
    assert page.status_code == 200
    assert "http://" not in page.text and "https://" not in page.text  # no CDN
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"):
        assert f"/static/swagger-ui/{asset}" in page.text
        response = await api.client.get(f"/static/swagger-ui/{asset}")
        assert response.status_code == 200 and len(response.content) > 100
    assert (await api.client.get("/redoc")).status_code == 404


@pytest.mark.skipif(
    shutil.which("chromium") is None, reason="chromium is not installed (apt-get install chromium)"
)
async def test_swagger_ui_renders_in_headless_chromium(api: Api, tmp_path: Path) -> None:
    profile = tmp_path / "chromium-profile"
    proc = await asyncio.create_subprocess_exec(
        "chromium",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=8000",
        "--dump-dom",
        f"{api.base_url}/docs",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "DBUS_SESSION_BUS_ADDRESS": "disabled:"},
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    dom = html.unescape(out.decode(errors="replace"))
    assert 'class="opblock ' in dom, dom[:2000]
    assert f'data-path="{GSLB_COLLECTION}"' in dom
    assert 'data-path="/apis/k8gb.absa.oss/v1beta1/namespaces/{namespace}/gslbs/{name}/status"' in dom
    assert "Failed to load API definition" not in dom
    assert dom.count('class="opblock ') >= 18  # 9 Gslb operations per API group
