"""Hostile requests over real HTTP: each is refused with a 4xx Kubernetes Status naming the problem, nothing
is stored or changed (the full LIST of both groups is byte-for-byte what it was), and a valid create right
after still gets 201.

Every row of tests/http_fuzz/hostile.py goes to each write it applies to, in both API groups; the updates
target an existing object (`keeper`), which must come out unchanged.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from app.domain.gslb import GROUPS, VERSION
from tests.http_fuzz.hostile import (
    CREATE,
    MAX_BODY,
    NAMESPACE,
    PATCH,
    REPLACE,
    STATUS,
    TABLE,
    Hostile,
    gslb,
)
from tests.http_fuzz.live import LiveApi
from tests.http_fuzz.tally import TALLY

_METHODS = {CREATE: "POST", REPLACE: "PUT", PATCH: "PATCH", STATUS: "PUT"}


def _cases() -> Iterator[Any]:
    for row in TABLE:
        for op in row.ops:
            for group in GROUPS:
                marks = [pytest.mark.xfail(strict=True, reason=row.known_bug)] if row.known_bug else []
                yield pytest.param(row, op, group, id=f"{row.id}-{op}-{group}", marks=marks)


def _url(group: str, op: str, namespace: str, name: str = "") -> str:
    """The URL `op` writes to: the collection for a create, the object (or its status) otherwise."""
    collection = f"/apis/{group}/{VERSION}/namespaces/{namespace}/gslbs"
    if op == CREATE:
        return collection
    return f"{collection}/{name}" + ("/status" if op == STATUS else "")


def _object_url(group: str, namespace: str, name: str) -> str:
    return _url(group, REPLACE, namespace, name)


@pytest.fixture(scope="module")
def client(live: LiveApi) -> Iterator[httpx.Client]:
    assert live.max_body == MAX_BODY
    with live.client() as http:
        for group in GROUPS:  # the object the updates aim at
            created = http.post(_url(group, CREATE, NAMESPACE), json=gslb())
            assert created.status_code == 201, created.text
        yield http


def _everything(client: httpx.Client) -> list[dict[str, Any]]:
    """Every stored object of both groups, as the API lists them."""
    items: list[dict[str, Any]] = []
    for group in GROUPS:
        listed = client.get(f"/apis/{group}/{VERSION}/gslbs")
        assert listed.status_code == 200, listed.text
        items += listed.json()["items"]
    return items


def assert_refusal(response: httpx.Response, code: int, reason: str, says: str) -> dict[str, Any]:
    """A Kubernetes Status with this code and reason, whose message names the problem."""
    assert response.status_code == code, response.text[:2000]
    assert response.headers["content-type"].startswith("application/json")
    status: dict[str, Any] = response.json()
    assert (status["kind"], status["apiVersion"], status["status"]) == ("Status", "v1", "Failure"), status
    assert (status["code"], status["reason"]) == (code, reason), status
    assert says in status["message"], status
    return status


def _send(client: httpx.Client, row: Hostile, op: str, group: str) -> httpx.Response:
    headers = {"Content-Type": row.content_type} if row.content_type else {}
    content = row.body() if callable(row.body) else row.body
    url = _url(group, op, row.namespace, row.name)
    return client.request(_METHODS[op], url, content=content, headers=headers)


@pytest.mark.parametrize(("row", "op", "group"), list(_cases()))
def test_hostile_request_is_refused_and_nothing_is_written(
    row: Hostile, op: str, group: str, client: httpx.Client, live: LiveApi
) -> None:
    before_requests = live.counter.total
    stored = _everything(client)

    response = _send(client, row, op, group)
    if callable(row.body):  # streamed: no Content-Length, the server counts what arrives
        assert "content-length" not in response.request.headers
    assert_refusal(response, row.code, row.reason, row.says)

    assert _everything(client) == stored, "a refused request changed what is stored"
    created = client.post(_url(group, CREATE, NAMESPACE), json=gslb(name=None, generateName="after-"))
    assert created.status_code == 201, created.text
    deleted = client.delete(_object_url(group, NAMESPACE, created.json()["metadata"]["name"]))
    assert deleted.status_code == 200, deleted.text
    TALLY.add_hostile(row.id, live.counter.total - before_requests)


@pytest.mark.parametrize("group", GROUPS)
def test_names_at_the_kubernetes_limits_are_accepted(group: str, client: httpx.Client) -> None:
    """The refusals above are the limits, not a margin: 253-character names, 63-character namespaces."""
    name, namespace = "n" * 253, "s" * 63
    created = client.post(_url(group, CREATE, namespace), json=gslb(name=name))
    assert created.status_code == 201, created.text
    assert client.get(_object_url(group, namespace, name)).json()["metadata"]["name"] == name
    assert client.delete(_object_url(group, namespace, name)).status_code == 200


@pytest.mark.parametrize("group", GROUPS)
def test_a_document_exactly_100_levels_deep_is_accepted(group: str, client: httpx.Client) -> None:
    """The nesting limit is exact: the object, spec, ingress and 97 arrays make 100 levels."""
    body = gslb(name="deep-100")
    body["spec"]["ingress"] = {"junk": json.loads("[" * 97 + "]" * 97)}  # unknown fields are pruned
    created = client.post(_url(group, CREATE, NAMESPACE), json=body)
    assert created.status_code == 201, created.text
    assert "junk" not in created.json()["spec"].get("ingress", {})
    assert client.delete(_object_url(group, NAMESPACE, "deep-100")).status_code == 200


def _chunked(payload: bytes, size: int = 16_384) -> bytes:
    pieces = (payload[i : i + size] for i in range(0, len(payload), size))
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


def test_413_reaches_a_client_still_sending_and_the_connection_ends_cleanly(live: LiveApi) -> None:
    """Past the limit the server answers at once; the rest of the body must not turn into a TCP reset.

    Closing a socket with unread data resets the connection, and a reset can destroy the 413 before the
    client reads it. The client here writes on while it waits for the answer (as httpx and curl do).
    """
    host, port = live.base_url.removeprefix("http://").split(":")
    head = (
        f"POST /apis/k8gb.io/{VERSION}/namespaces/{NAMESPACE}/gslbs HTTP/1.1\r\nHost: {host}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    body = _chunked(b"x" * (MAX_BODY + 200_000))
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(head)
        writer = threading.Thread(target=lambda: conn.sendall(body), daemon=True)
        writer.start()
        received = b""
        while chunk := conn.recv(65_536):  # a reset raises ConnectionResetError here
            received += chunk
        writer.join(10)
    status_line, _, rest = received.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 413 Request Entity Too Large", received[:300]
    status = json.loads(rest.partition(b"\r\n\r\n")[2])
    assert (status["kind"], status["code"], status["reason"]) == ("Status", 413, "RequestEntityTooLarge")
