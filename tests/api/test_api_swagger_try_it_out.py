"""Swagger UI's "Try it out", clicked in a real headless Chromium (driven over the DevTools protocol):
the trace headers and bodies it fills in are sent as they are, and the write joins the caller's trace."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from app.domain.gslb import GROUP
from tests.support.api_server import Api

pytestmark = pytest.mark.skipif(
    shutil.which("chromium") is None, reason="chromium is not installed (apt-get install chromium)"
)

CALLER_TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
CALLER = f"00-{CALLER_TRACE_ID}-b7ad6b7169203331-01"
COLLECTION = f"/apis/{GROUP}/v1beta1/namespaces/team-a/gslbs"

# Expand the PATCH operation, press "Try it out", type the path parameters and a traceparent (Swagger UI
# leaves that field empty), press "Execute"; the body keeps what Swagger UI filled in.
TRY_IT_OUT = r"""
(async () => {
  const wait = async (find) => {
    for (let i = 0; i < 200; i++) { const found = find(); if (found) return found;
      await new Promise(r => setTimeout(r, 50)); }
    throw new Error("timed out: " + find);
  };
  const block = await wait(() => document.querySelector('[id$="-patchK8gbIoV1beta1NamespacedGslb"]'));
  if (!block.classList.contains("is-open")) block.querySelector(".opblock-summary-control").click();
  (await wait(() => block.querySelector(".try-out__btn"))).click();
  const field = (name) => block.querySelector(`tr[data-param-name="${name}"] input`);
  const type = (input, value) => {
    Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, "value").set.call(input, value);
    input.dispatchEvent(new Event("input", {bubbles: true}));
  };
  type(await wait(() => field("namespace")), "team-a");
  type(field("name"), "roundrobin");
  await new Promise(r => setTimeout(r, 600));  // Swagger UI debounces its inputs
  const prefilled = field("traceparent").value;
  type(field("traceparent"), "CALLER");
  await new Promise(r => setTimeout(r, 600));
  const traceparent = field("traceparent").value;
  block.querySelector(".btn.execute").click();
  const status = await wait(() => {
    const cell = block.querySelector(".live-responses-table tbody .response-col_status");
    return cell && cell.textContent.match(/\d{3}/);
  });
  return JSON.stringify({prefilled, traceparent, status: status[0]});
})()
"""


@contextlib.asynccontextmanager
async def _chromium(profile: Path) -> AsyncIterator[str]:
    """A headless Chromium with the DevTools protocol on; yields its first page's websocket URL."""
    proc = await asyncio.create_subprocess_exec(
        "chromium",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "DBUS_SESSION_BUS_ADDRESS": "disabled:"},
    )
    try:
        port_file = profile / "DevToolsActivePort"
        async with asyncio.timeout(30):
            while not port_file.exists() or not port_file.read_text().strip():
                await asyncio.sleep(0.05)
            port = port_file.read_text().split()[0]
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{port}/json/list") as targets:
                    pages = [t for t in await targets.json() if t["type"] == "page"]
        yield pages[0]["webSocketDebuggerUrl"]
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def _call(
    ws: aiohttp.ClientWebSocketResponse, ids: itertools.count[int], method: str, **params: Any
) -> Any:
    """One DevTools protocol command; events in between are skipped."""
    ident = next(ids)
    await ws.send_json({"id": ident, "method": method, "params": params})
    while True:
        message = json.loads((await ws.receive()).data)
        if message.get("id") == ident:
            assert "error" not in message, message
            return message["result"]


async def test_try_it_out_sends_the_callers_traceparent_and_the_prefilled_patch(
    api: Api, tmp_path: Path
) -> None:
    document = (await api.client.get("/openapi.json")).json()
    create = document["paths"][f"/apis/{GROUP}/v1beta1/namespaces/{{namespace}}/gslbs"]["post"]
    example = create["requestBody"]["content"]["application/json"]["example"]
    assert (await api.client.post(COLLECTION, json=example)).status_code == 201

    ids = itertools.count(1)
    async with _chromium(tmp_path / "profile") as page, aiohttp.ClientSession() as http:
        async with http.ws_connect(page, max_msg_size=0) as ws:
            await _call(ws, ids, "Page.navigate", url=f"{api.base_url}/docs")
            result = await asyncio.wait_for(
                _call(
                    ws,
                    ids,
                    "Runtime.evaluate",
                    expression=TRY_IT_OUT.replace("CALLER", CALLER),
                    awaitPromise=True,
                ),
                60,
            )
    assert "exceptionDetails" not in result, result
    clicked = json.loads(result["result"]["value"])
    assert clicked["prefilled"] == "", clicked  # no made-up trace shared by every user of the page
    assert clicked["traceparent"] == CALLER, clicked
    assert clicked["status"] == "200", clicked
    patched = (await api.client.get(f"{COLLECTION}/roundrobin")).json()
    assert patched["metadata"]["labels"] == {"team": "web"}  # the pre-filled patch, sent as it was
    assert patched["metadata"]["annotations"]["k8gb.io/traceparent"].split("-")[1] == CALLER_TRACE_ID
