"""LoopbackServer answers what a raw socket sends it, however malformed, and never drops a request unanswered."""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit

import pytest

from box_sessions.testing import FakeBox, LoopbackServer, Reply, Request

from ..conftest import accepted_reply, until, wait_for_no_connections, wait_for_server_idle

BODY = b'{"group_ids": ["1"]}'


def raw_request(*extra_headers: bytes, method: bytes = b"POST", token: bytes = b"fake-developer-token") -> bytes:
    """A POST of BODY to the groups endpoint, with ``Connection: close`` so the answer ends at EOF."""
    head = [
        method + b" /2.0/groups/terminate_sessions HTTP/1.1",
        b"Host: 127.0.0.1",
        b"Authorization: Bearer " + token,
        b"Content-Type: application/json",
        b"Content-Length: " + str(len(BODY)).encode(),
        b"Connection: close",
        *extra_headers,
    ]
    return b"\r\n".join(head) + b"\r\n\r\n" + BODY


async def exchange(base_url: str, data: bytes) -> tuple[bytes, bytes]:
    """Send raw bytes, read until the server closes; return the status line and the body."""
    url = urlsplit(base_url)
    assert url.hostname is not None
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    try:
        writer.write(data)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = answer.partition(b"\r\n\r\n")
    return head.split(b"\r\n", 1)[0], body


async def test_header_value_that_is_not_utf8_is_answered(caplog: pytest.LogCaptureFixture) -> None:
    """A header value with non-UTF-8 bytes does not break the connection: the request is answered as usual."""
    fake = FakeBox()
    async with fake.serve() as base_url:
        status, body = await exchange(base_url, raw_request(b"X-Note: caf\xe9 \xff\xfe"))
    assert status == b"HTTP/1.1 202 Accepted"
    assert b"Request is successful" in body
    assert fake.terminated["group_ids"] == ["1"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_authorization_that_is_not_utf8_is_401() -> None:
    """A bearer token with non-UTF-8 bytes reaches the fake, which answers 401 as for any unknown token."""
    fake = FakeBox()
    async with fake.serve() as base_url:
        status, body = await exchange(base_url, raw_request(token=b"\xc3\x28tok"))
    assert status == b"HTTP/1.1 401 Unauthorized"
    assert b'"invalid_token"' in body
    assert fake.status_counts == {401: 1}


async def test_header_value_reaches_the_handler_byte_for_byte() -> None:
    """Header values are decoded as latin-1: each byte is one character, so nothing is lost or replaced."""
    seen: list[Request] = []

    async def handler(request: Request) -> Reply:
        seen.append(request)
        return Reply(204)

    async with LoopbackServer(handler) as server:
        status, _ = await exchange(server.url, raw_request(b"X-Note: caf\xe9 \xff"))
    assert status == b"HTTP/1.1 204 No Content"
    assert seen[0].headers["x-note"].encode("latin-1") == b"caf\xe9 \xff"


@pytest.mark.parametrize(
    ("data", "status"),
    [
        pytest.param(b"GARBAGE\r\n\r\n", b"HTTP/1.1 400 Bad Request", id="bad-request-line"),
        pytest.param(b"POST / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", b"HTTP/1.1 400 Bad Request", id="no-colon"),
        pytest.param(
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"HTTP/1.1 400 Bad Request",
            id="two-lengths",
        ),
        pytest.param(
            b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"x" * 20_000,  # no end of head: h11 stops at 16 KiB
            b"HTTP/1.1 431 Request Header Fields Too Large",
            id="huge-header",
        ),
    ],
)
async def test_request_that_is_not_http_is_answered_then_closed(data: bytes, status: bytes) -> None:
    """A request h11 cannot parse gets the status h11 suggests and the connection is closed; the handler never runs."""
    seen: list[Request] = []

    async def handler(request: Request) -> Reply:
        seen.append(request)
        return Reply(204)

    async with LoopbackServer(handler) as server:
        answer_status, body = await exchange(server.url, data)
    assert answer_status == status
    assert b"not a valid HTTP/1.1 request" in body
    assert seen == []


async def test_head_is_answered_without_a_body() -> None:
    """HEAD on a termination path is answered 405 with its headers only, no body."""
    fake = FakeBox()
    async with fake.serve() as base_url:
        status, body = await exchange(base_url, raw_request(method=b"HEAD"))
    assert status == b"HTTP/1.1 405 Method Not Allowed"
    assert body == b""


async def test_status_without_a_standard_reason_phrase_is_sent_bare() -> None:
    """A handler's status that HTTP names no reason for is sent with an empty reason phrase."""

    async def handler(request: Request) -> Reply:
        return Reply(599)

    async with LoopbackServer(handler) as server:
        status, _ = await exchange(server.url, raw_request())
    assert status == b"HTTP/1.1 599 "


async def test_server_tasks_cover_everything_the_server_runs() -> None:
    """While a handler runs, the server's socket watcher is one of `server.tasks` too.

    The cancellation soak tells a client's leftovers from the server's by subtracting
    `server.tasks`; a watcher missing from that set made it fail in CI.
    """
    running = asyncio.Event()

    async def handler(request: Request) -> Reply:
        running.set()
        await asyncio.sleep(60)  # runs until the client hangs up, which cancels it
        return accepted_reply()

    async with LoopbackServer(handler) as server:
        _, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"POST /x HTTP/1.1\r\nhost: t\r\ncontent-length: 0\r\n\r\n")
        await running.wait()
        await until(lambda: len(server.tasks) == 3)  # connection, handler, and the watcher beside the handler
        assert asyncio.all_tasks() - server.tasks == {asyncio.current_task()}
        writer.close()
        await writer.wait_closed()
        await wait_for_no_connections(server)
        await wait_for_server_idle(server)  # the hang-up cancelled the handler and ended the watcher
        assert server.tasks == set()
