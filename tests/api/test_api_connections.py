"""The API's connections, over real sockets to a real uvicorn server running the protocol `gslb serve`
runs: a request head must arrive in time, open connections are capped, and a request framed twice is
refused and its connection closed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

from tests.support.api_server import Api, ServeFactory

GSLBS = "/apis/k8gb.io/v1beta1/namespaces/default/gslbs"


def address(api: Api) -> tuple[str, int]:
    host, port = api.base_url.removeprefix("http://").split(":")
    return host, int(port)


async def until_closed(reader: asyncio.StreamReader, timeout: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and when it closed (seconds from now)."""
    started = time.monotonic()
    received = b""
    async with asyncio.timeout(timeout):
        with contextlib.suppress(ConnectionResetError):
            while chunk := await reader.read(65536):
                received += chunk
    return received, time.monotonic() - started


async def still_open(reader: asyncio.StreamReader) -> bool:
    """Nothing more comes, and no end either, within a moment."""
    try:
        await asyncio.wait_for(reader.read(1), 0.3)
    except TimeoutError:
        return True
    return False


async def test_a_silent_connection_is_closed_after_the_header_timeout(serve: ServeFactory) -> None:
    api = await serve(header_seconds=1.0)
    reader, writer = await asyncio.open_connection(*address(api))
    received, after = await until_closed(reader, timeout=5)
    writer.close()
    assert received == b""  # nothing came, so nothing to answer
    assert 0.9 <= after < 2.0


async def test_a_header_a_second_is_408_and_closed_after_the_header_timeout(serve: ServeFactory) -> None:
    """Slowloris: each line resets no timer; the head as a whole has `header_seconds`."""
    api = await serve(header_seconds=2.5)
    reader, writer = await asyncio.open_connection(*address(api))

    async def drip() -> None:
        with contextlib.suppress(ConnectionError):
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            for n in range(60):
                await asyncio.sleep(1)
                writer.write(b"X-Header-%d: yes\r\n" % n)
                await writer.drain()

    sending = asyncio.create_task(drip())
    received, after = await until_closed(reader, timeout=6)
    sending.cancel()
    writer.close()
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), received
    assert b"connection: close" in head
    status = json.loads(body)
    assert (status["kind"], status["reason"], status["code"]) == ("Status", "Timeout", 408)
    assert status["message"] == "the request line and headers did not arrive within 2.5 s"
    assert 2.3 <= after < 3.5


async def test_the_next_request_on_a_kept_alive_connection_has_the_same_deadline(serve: ServeFactory) -> None:
    """A keep-alive pause is not cut short by the head timeout, but a head dripped after it is."""
    api = await serve(header_seconds=1.0)
    reader, writer = await asyncio.open_connection(*address(api))
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await reader.readuntil(b"ok")).startswith(b"HTTP/1.1 200 ")
    await asyncio.sleep(1.5)  # idle longer than the head timeout: still open (uvicorn's keep-alive is 5 s)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await reader.readuntil(b"ok")).startswith(b"HTTP/1.1 200 ")

    writer.write(b"GET /healthz HTTP/1.1\r\n")  # and now a head that never ends
    received, after = await until_closed(reader, timeout=5)
    writer.close()
    assert received.startswith(b"HTTP/1.1 408 "), received
    assert 0.9 <= after < 2.0


async def test_connections_beyond_the_cap_close_the_longest_waiting_one(serve: ServeFactory) -> None:
    """Held connections cannot lock a client out: a new one beyond GSLB_API_MAX_CONNECTIONS closes the
    one that has waited longest without a request; one with a request in progress is never closed."""
    api = await serve(header_seconds=60, max_connections=4)
    host, port = address(api)
    held = []
    for _ in range(4):
        held.append(await asyncio.open_connection(host, port))
        await asyncio.sleep(0.05)  # so that the order they wait in is the order they came
    for _ in range(2):  # each a fresh connection sending its request at once: each closes one held
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await asyncio.wait_for(reader.readuntil(b"ok"), 2)).startswith(b"HTTP/1.1 200 ")
        held.append((reader, writer))
    for n, (reader, writer) in enumerate(held):
        if n < 2:  # the two that waited longest, oldest first
            assert await asyncio.wait_for(reader.read(), 1) == b""
        else:
            assert await still_open(reader)
        writer.close()


async def test_when_every_connection_has_a_request_in_progress_a_new_one_is_closed(
    serve: ServeFactory,
) -> None:
    api = await serve(header_seconds=60, max_connections=2)
    host, port = address(api)
    busy = []
    for _ in range(2):  # a POST whose body never comes: a request in progress
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(f"POST {GSLBS} HTTP/1.1\r\nHost: x\r\ncontent-length: 100\r\n\r\n".encode())
        busy.append((reader, writer))
    await asyncio.sleep(0.2)
    reader, writer = await asyncio.open_connection(host, port)
    received, _ = await until_closed(reader, timeout=2)
    assert received == b""
    writer.close()
    for reader, writer in busy:
        assert await still_open(reader)
        writer.close()


async def test_a_request_with_transfer_encoding_and_content_length_is_400_and_the_connection_closed(
    api: Api,
) -> None:
    """RFC 9112 §6.1: what a proxy took for this body must not be read as the next request (smuggling)."""
    reader, writer = await asyncio.open_connection(*address(api))
    smuggled = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    writer.write(
        f"POST {GSLBS} HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n".encode()
        + b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        + smuggled
    )
    received, _ = await until_closed(reader, timeout=3)
    writer.close()
    assert received.count(b"HTTP/1.1 ") == 1, received  # the smuggled GET got no answer
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ") and b"connection: close" in head
    status = json.loads(body)
    assert status["reason"] == "BadRequest"
    assert "Transfer-Encoding and Content-Length" in status["message"]
    assert (await api.client.get(GSLBS)).json()["items"] == []


async def test_a_body_left_unread_after_the_answer_closes_the_connection(serve: ServeFactory) -> None:
    """A head announcing a large body, answered without reading it (/healthz, or a 401 for a stranger),
    then the body trickled a byte at a time: the connection was held for ever, beyond the cap's reach."""
    api = await serve(header_seconds=1.0, max_connections=3)
    reader, writer = await asyncio.open_connection(*address(api))
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")

    async def drip() -> None:
        with contextlib.suppress(ConnectionError):
            for _ in range(20):
                await asyncio.sleep(0.5)
                writer.write(b"a")
                await writer.drain()

    dripping = asyncio.create_task(drip())
    try:
        received, after = await until_closed(reader, timeout=5)
    finally:
        dripping.cancel()
        writer.close()
    assert received.startswith(b"HTTP/1.1 200 ")
    assert after < 2.0
