"""The transport against a real HTTP server on 127.0.0.1: timeouts, drops, many connections."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from box_sessions import BoxClient, BoxConnectionError, DeveloperTokenAuth, RetryPolicy
from box_sessions.testing import DropConnection, LoopbackServer, Reply, Request

from .conftest import ACCEPTED

AUTH = DeveloperTokenAuth("dev-token")
FAST_RETRY = RetryPolicy(initial_backoff=0.01, max_backoff=0.05, total_timeout=20)
ACCEPTED_BODY = json.dumps(ACCEPTED).encode()


def accepted() -> Reply:
    return Reply(202, ACCEPTED_BODY, {"content-type": "application/json"})


async def wait_for_no_connections(server: LoopbackServer) -> None:
    for _ in range(200):
        if server.open_connections == 0:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{server.open_connections} connections still open")


async def test_read_timeout_is_retried_then_answered() -> None:
    """A request whose answer stalls past the read timeout is retried on a new connection and answered."""
    seen: list[Request] = []

    async def handler(request: Request) -> Reply:
        seen.append(request)
        if len(seen) == 1:
            await asyncio.sleep(30)  # stalls: the client's read timeout fires first
        return accepted()

    async with LoopbackServer(handler) as server:
        async with BoxClient(AUTH, base_url=server.url, timeout=0.3, retry=FAST_RETRY) as client:
            msg = await client.session_termination.terminate_users_sessions(user_ids=["1"])
        await wait_for_no_connections(server)
    assert msg.message == ACCEPTED["message"]
    assert len(seen) == 2
    assert seen[1].headers["authorization"] == "Bearer dev-token"


async def test_dropped_connection_is_retried() -> None:
    """A server that closes the connection mid-request without answering is retried."""
    count = 0

    async def handler(request: Request) -> Reply:
        nonlocal count
        count += 1
        if count <= 2:
            raise DropConnection
        return accepted()

    async with LoopbackServer(handler) as server, BoxClient(AUTH, base_url=server.url, retry=FAST_RETRY) as client:
        await client.session_termination.terminate_groups_sessions(["5"])
    assert count == 3


async def test_always_dropping_server_raises_connection_error() -> None:
    """When every attempt is dropped, BoxConnectionError is raised after max_attempts."""
    count = 0

    async def handler(request: Request) -> Reply:
        nonlocal count
        count += 1
        raise DropConnection

    async with LoopbackServer(handler) as server, BoxClient(AUTH, base_url=server.url, retry=FAST_RETRY) as client:
        with pytest.raises(BoxConnectionError):
            await client.session_termination.terminate_groups_sessions(["5"])
    assert count == 5


async def test_refused_connection_raises_connection_error() -> None:
    """Nothing listening on the port: BoxConnectionError after the retries."""
    async with LoopbackServer(lambda r: asyncio.sleep(0, accepted())) as server:
        url = server.url
    async with BoxClient(AUTH, base_url=url, retry=FAST_RETRY) as client:
        with pytest.raises(BoxConnectionError):
            await client.session_termination.terminate_groups_sessions(["5"])


async def test_200_concurrent_calls_through_one_client() -> None:
    """200 concurrent calls all succeed over a bounded pool of connections, closed afterwards."""
    bodies: list[bytes] = []

    async def handler(request: Request) -> Reply:
        bodies.append(request.body)
        await asyncio.sleep(0.02)
        return accepted()

    async with LoopbackServer(handler) as server:
        async with BoxClient(AUTH, base_url=server.url, retry=FAST_RETRY) as client:
            results = await asyncio.gather(
                *(client.session_termination.terminate_users_sessions(user_ids=[i]) for i in range(200))
            )
        await wait_for_no_connections(server)
        opened = server.connections_opened
    assert len(results) == 200
    assert sorted(json.loads(b)["user_ids"][0] for b in bodies) == sorted(str(i) for i in range(200))
    assert 1 < opened <= 100  # concurrency used several connections, never more than the pool allows


async def test_429_cooldown_delays_requests_sent_beside_it() -> None:
    """After one request's 429 with retry-after, the client's other requests reach the server only after it."""
    arrivals: list[tuple[float, str]] = []
    first = True
    answered_429_at = 0.0

    async def handler(request: Request) -> Reply:
        nonlocal first, answered_429_at
        arrivals.append((time.monotonic(), request.path))
        if first:
            first = False
            answered_429_at = time.monotonic()
            return Reply(
                429,
                b'{"type":"error","status":429,"code":"rate_limit_exceeded"}',
                {"retry-after": "0.5"},
            )
        return accepted()

    async with LoopbackServer(handler) as server, BoxClient(AUTH, base_url=server.url, retry=FAST_RETRY) as client:
        manager = client.session_termination
        limited = asyncio.create_task(manager.terminate_users_sessions(user_ids=["1"]))
        while client._transport.cooldown_remaining == 0:  # noqa: ASYNC110 - no event to wait on
            await asyncio.sleep(0.005)
        beside = [asyncio.create_task(manager.terminate_groups_sessions([g])) for g in range(5)]
        await asyncio.gather(limited, *beside)
    assert len(arrivals) == 7
    later = arrivals[1:]
    # Lower bounds only: every other request waited out the 0.5 s cool-down (never earlier).
    assert all(at >= answered_429_at + 0.45 for at, _ in later)
    assert sum(1 for _, path in later if path == "/2.0/groups/terminate_sessions") == 5
