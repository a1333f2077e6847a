"""The transport against a real HTTP server on 127.0.0.1: timeouts, drops, many connections."""

from __future__ import annotations

import asyncio
import json

import attrs
import pytest

from box_sessions import BoxClient, BoxConnectionError, DeveloperTokenAuth
from box_sessions.testing import DropConnection, LoopbackServer, Reply, Request

from ..conftest import ACCEPTED, FAST_RETRY, accepted_reply, wait_for_no_connections, wait_for_server_idle

AUTH = DeveloperTokenAuth("dev-token")


async def test_read_timeout_is_retried_then_answered() -> None:
    """A request whose answer stalls past the read timeout is retried on a new connection and answered."""
    seen: list[Request] = []

    async def handler(request: Request) -> Reply:
        seen.append(request)
        if len(seen) == 1:
            await asyncio.sleep(30)  # stalls: the client's read timeout fires first
        return accepted_reply()

    async with LoopbackServer(handler) as server:
        # 1 s per attempt: ample for a prompt answer on a busy machine, far short of the 30 s stall.
        async with BoxClient(AUTH, base_url=server.url, rate_limit=None, timeout=1.0, retry=FAST_RETRY) as client:
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
        return accepted_reply()

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
    async with LoopbackServer(lambda r: asyncio.sleep(0, accepted_reply())) as server:
        url = server.url
    async with BoxClient(AUTH, base_url=url, rate_limit=None, retry=FAST_RETRY) as client:
        with pytest.raises(BoxConnectionError):
            await client.session_termination.terminate_groups_sessions(["5"])


async def test_200_concurrent_calls_through_one_client() -> None:
    """200 concurrent calls all succeed over a bounded pool of connections, closed afterwards."""
    bodies: list[bytes] = []

    async def handler(request: Request) -> Reply:
        bodies.append(request.body)
        await asyncio.sleep(0.02)  # the server's answer time: the calls overlap and need many connections
        return accepted_reply()

    # No hedging: a second copy, sent when a busy machine answers slowly, would be a 201st request
    # (the bodies are counted below). Hedging has its own tests.
    retry = attrs.evolve(FAST_RETRY, hedge=False)
    async with LoopbackServer(handler) as server:
        async with BoxClient(AUTH, base_url=server.url, rate_limit=None, retry=retry) as client:
            results = await asyncio.gather(
                *(client.session_termination.terminate_users_sessions(user_ids=[i]) for i in range(200))
            )
        await wait_for_no_connections(server)
        peak = server.peak_connections
    assert len(results) == 200
    assert sorted(json.loads(b)["user_ids"][0] for b in bodies) == sorted(str(i) for i in range(200))
    assert 1 < peak <= 100  # concurrency used several connections at once, never more than the pool allows


async def test_cancelled_job_leaves_no_task_and_no_connection() -> None:
    """Cancelling a bulk job whose requests hang closes their connections, with the client still open."""
    hanging = 0
    all_hanging = asyncio.Event()

    async def handler(request: Request) -> Reply:
        nonlocal hanging
        hanging += 1
        if hanging == 4:
            all_hanging.set()
        await asyncio.sleep(60)  # hangs until the client hangs up, which cancels it
        return accepted_reply()

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
        await wait_for_server_idle(server)  # the server's own tasks end once they see the hang-up
        assert asyncio.all_tasks() == before
    assert hanging == 4
