"""The transport against a real HTTP server on 127.0.0.1: timeouts, drops, many connections."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable

import attrs
import pytest

from box_sessions import BoxClient, BoxConnectionError, DeveloperTokenAuth, RateLimit, RetryPolicy
from box_sessions.testing import DropConnection, FakeBox, LoopbackServer, Reply, Request

from ..conftest import ACCEPTED, json_reply, wait_for_no_connections

AUTH = DeveloperTokenAuth("dev-token")
FAST_RETRY = RetryPolicy(initial_backoff=0.01, max_backoff=0.05, total_timeout=20)


def accepted() -> Reply:
    return json_reply(202, ACCEPTED)


async def test_read_timeout_is_retried_then_answered() -> None:
    """A request whose answer stalls past the read timeout is retried on a new connection and answered."""
    seen: list[Request] = []

    async def handler(request: Request) -> Reply:
        seen.append(request)
        if len(seen) == 1:
            await asyncio.sleep(30)  # stalls: the client's read timeout fires first
        return accepted()

    async with LoopbackServer(handler) as server:
        async with BoxClient(AUTH, base_url=server.url, rate_limit=None, timeout=0.3, retry=FAST_RETRY) as client:
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

    async with (
        LoopbackServer(handler) as server,
        BoxClient(AUTH, base_url=server.url, rate_limit=None, retry=FAST_RETRY) as client,
    ):
        await client.session_termination.terminate_groups_sessions(["5"])
    assert count == 3


async def test_always_dropping_server_raises_connection_error() -> None:
    """When every attempt is dropped, BoxConnectionError is raised after max_attempts."""
    count = 0

    async def handler(request: Request) -> Reply:
        nonlocal count
        count += 1
        raise DropConnection

    async with (
        LoopbackServer(handler) as server,
        BoxClient(AUTH, base_url=server.url, rate_limit=None, retry=FAST_RETRY) as client,
    ):
        with pytest.raises(BoxConnectionError):
            await client.session_termination.terminate_groups_sessions(["5"])
    assert count == 5


async def test_refused_connection_raises_connection_error() -> None:
    """Nothing listening on the port: BoxConnectionError after the retries."""
    async with LoopbackServer(lambda r: asyncio.sleep(0, accepted())) as server:
        url = server.url
    async with BoxClient(AUTH, base_url=url, rate_limit=None, retry=FAST_RETRY) as client:
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
        async with BoxClient(AUTH, base_url=server.url, rate_limit=None, retry=FAST_RETRY) as client:
            results = await asyncio.gather(
                *(client.session_termination.terminate_users_sessions(user_ids=[i]) for i in range(200))
            )
        await wait_for_no_connections(server)
        peak = server.peak_connections
    assert len(results) == 200
    assert sorted(json.loads(b)["user_ids"][0] for b in bodies) == sorted(str(i) for i in range(200))
    assert 1 < peak <= 100  # concurrency used several connections at once, never more than the pool allows


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

    async with (
        LoopbackServer(handler) as server,
        BoxClient(AUTH, base_url=server.url, rate_limit=None, retry=FAST_RETRY) as client,
    ):
        manager = client.session_termination
        limited = asyncio.create_task(manager.terminate_users_sessions(user_ids=["1"]))
        while client._sender.pacer.cooldown == 0:  # noqa: ASYNC110 - no event to wait on
            await asyncio.sleep(0.005)
        beside = [asyncio.create_task(manager.terminate_groups_sessions([g])) for g in range(5)]
        await asyncio.gather(limited, *beside)
    assert len(arrivals) == 7
    later = arrivals[1:]
    # Lower bounds only: every other request waited out the 0.5 s cool-down (never earlier).
    assert all(at >= answered_429_at + 0.45 for at, _ in later)
    assert sum(1 for _, path in later if path == "/2.0/groups/terminate_sessions") == 5


async def test_10000_ids_through_rate_limited_faulty_server_all_accounted_once() -> None:
    """10,000 inputs through FakeBox with a rate limit and 5xx answers: each ends terminated, exactly once."""
    fake = FakeBox(rate_limit=24_000, burst=20, integer_retry_after=False, error_rate=0.05, seed=3)
    user_ids = [str(i) for i in range(1, 8001)]
    logins = [f"user{i}@example.com" for i in range(1500)]
    groups = [str(900_000 + i) for i in range(500)]
    async with LoopbackServer(fake.handle) as server:
        async with BoxClient(
            DeveloperTokenAuth(fake.developer_token),
            base_url=server.url,
            # No hedging: a copy sent when a loaded machine is slow would make the request counts
            # below depend on timing. Hedging has its own tests.
            retry=attrs.evolve(FAST_RETRY, hedge=False),
            rate_limit=RateLimit(requests_per_minute=36_000, burst=10),
        ) as client:
            report = await client.session_termination.terminate(
                user_ids=user_ids, user_logins=logins, group_ids=groups, batch_size=50
            )
        await wait_for_no_connections(server)
    assert report.ok, str(report)
    assert report.failed == []
    for field, given in (("user_ids", user_ids), ("user_logins", logins), ("group_ids", groups)):
        assert sorted(report.terminated[field]) == sorted(given)  # each reported once
        assert sorted(fake.terminated[field]) == sorted(given)  # and Box got each exactly once
    statuses = fake.status_counts
    assert report.requests == sum(statuses.values())
    assert report.rate_limited == statuses[429]
    assert fake.faults["error"] >= 1
    assert report.retries == statuses[429] + sum(n for status, n in statuses.items() if status >= 500)


async def test_cancelled_job_leaves_no_task_and_no_connection() -> None:
    """Cancelling a bulk job whose requests hang closes their connections, with the client still open."""
    hanging = 0
    all_hanging = asyncio.Event()

    async def handler(request: Request) -> Reply:
        nonlocal hanging
        hanging += 1
        if hanging == 4:
            all_hanging.set()
        await asyncio.sleep(60)
        return accepted()

    async with (
        LoopbackServer(handler) as server,
        BoxClient(AUTH, base_url=server.url, rate_limit=None, retry=FAST_RETRY) as client,
    ):
        before = asyncio.all_tasks()
        job = asyncio.create_task(
            client.session_termination.terminate(user_ids=range(1000), batch_size=10, max_concurrency=4)
        )
        await all_hanging.wait()
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job
        await wait_for_no_connections(server)  # while the client is still open
        for _ in range(100):  # the server's own tasks end once they see the hang-up
            if asyncio.all_tasks() == before:
                break
            await asyncio.sleep(0.01)
        assert asyncio.all_tasks() == before
    assert hanging == 4


async def test_server_tasks_cover_everything_the_server_runs() -> None:
    """While a handler runs, the server's socket watcher is one of `server.tasks` too.

    The cancellation soak tells a client's leftovers from the server's by subtracting
    `server.tasks`; a watcher missing from that set made it fail in CI.
    """
    running = asyncio.Event()

    async def handler(request: Request) -> Reply:
        running.set()
        await asyncio.sleep(60)
        return accepted()

    async with LoopbackServer(handler) as server:
        _, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"POST /x HTTP/1.1\r\nhost: t\r\ncontent-length: 0\r\n\r\n")
        await running.wait()
        await asyncio.sleep(0)  # the watcher starts beside the handler
        assert asyncio.all_tasks() - server.tasks == {asyncio.current_task()}
        assert len(server.tasks) == 3  # connection, handler, watcher
        writer.close()
        await writer.wait_closed()
        await wait_for_no_connections(server)
        for _ in range(100):
            if not server.tasks:
                break
            await asyncio.sleep(0.01)
        assert server.tasks == set()  # the hang-up cancelled the handler and ended the watcher


async def hedging_server(stall_body: bytes, seen: list[bytes]) -> Callable[[Request], Awaitable[Reply]]:
    async def handler(request: Request) -> Reply:
        seen.append(request.body)
        if request.body == stall_body and seen.count(stall_body) == 1:
            await asyncio.sleep(60)  # the first copy stalls; a second copy is answered at once
        await asyncio.sleep(0.005)
        return accepted()

    return handler


async def test_stalled_answer_is_hedged_with_a_second_copy() -> None:
    """A request much slower than recent answers gets a second copy; the first answer wins, the slow one is closed."""
    seen: list[bytes] = []
    stall = b'{"group_ids":["999"]}'
    async with LoopbackServer(await hedging_server(stall, seen)) as server:
        async with BoxClient(AUTH, base_url=server.url, rate_limit=None, retry=FAST_RETRY) as client:
            for i in range(30):  # recent answers set the hedge delay
                await client.session_termination.terminate_groups_sessions([i])
            await client.session_termination.terminate_groups_sessions(["999"])
            hedges = client._sender.hedger.hedges
        await wait_for_no_connections(server)
    assert hedges == 1
    assert seen.count(stall) == 2


async def test_hedging_can_be_turned_off() -> None:
    """RetryPolicy(hedge=False) waits for the slow answer instead."""
    seen: list[bytes] = []

    async def handler(request: Request) -> Reply:
        seen.append(request.body)
        if len(seen) == 31:
            await asyncio.sleep(0.5)
        return accepted()

    policy = RetryPolicy(initial_backoff=0.01, max_backoff=0.05, total_timeout=20, hedge=False)
    async with (
        LoopbackServer(handler) as server,
        BoxClient(AUTH, base_url=server.url, rate_limit=None, retry=policy) as client,
    ):
        for i in range(31):
            await client.session_termination.terminate_groups_sessions([i])
        assert client._sender.hedger.hedges == 0
    assert len(seen) == 31
