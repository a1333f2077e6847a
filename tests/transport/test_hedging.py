"""Hedging: a second copy of a stalled request, raced against the first; the loser is cancelled and its outcome read."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from box_sessions import BoxClient, DeveloperTokenAuth, RetryPolicy
from box_sessions._sending._hedge import Hedger
from box_sessions.testing import LoopbackServer, Reply, Request

from ..conftest import FAST_RETRY, accepted_reply, until, wait_for_no_connections


async def test_a_copy_that_failed_as_the_other_won_leaves_no_unread_exception() -> None:
    """Both copies end in one turn, one failing: the race returns the winner and reads the loser's exception.

    (An unread one is reported by asyncio as "Task exception was never retrieved" when the task is
    collected, as the suite once printed under two busy cores for a timed-out hedged copy.)
    """
    reported: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    go = asyncio.Event()

    async def failing() -> str:
        await go.wait()
        raise TimeoutError("the first copy timed out")

    async def winning() -> str:
        await go.wait()
        return "answer"

    for _ in range(20):  # which copy the race looks at first varies: meet both orders
        go.clear()
        race = asyncio.create_task(Hedger().race(failing, winning, 0.0, what="POST /x"))
        # Both copies are running once the race has started the second one: this test, the race, and the two copies.
        await until(lambda: len(asyncio.all_tasks()) >= 4)
        go.set()
        assert await race == "answer"
        del race
        gc.collect()
    await asyncio.sleep(0)  # one turn, for any report the collections left to the loop
    assert [context["message"] for context in reported] == []


async def test_when_both_copies_fail_the_first_error_is_raised() -> None:
    """Every copy failing raises the first one's error."""

    async def first() -> str:
        raise ValueError("first")

    async def second() -> str:
        raise ValueError("second")

    with pytest.raises(ValueError, match="first"):
        await Hedger().race(first, second, 0.0, what="POST /x")


# -- against a real server on 127.0.0.1 ----------------------------------------------------------


async def hedging_server(stall_body: bytes, seen: list[bytes]) -> Callable[[Request], Awaitable[Reply]]:
    async def handler(request: Request) -> Reply:
        seen.append(request.body)
        if request.body == stall_body and seen.count(stall_body) == 1:
            await asyncio.sleep(60)  # the first copy stalls until the client hangs up; a second copy is answered
        await asyncio.sleep(0.005)  # the server's answer time, which sets the hedge delay
        return accepted_reply()

    return handler


async def test_stalled_answer_is_hedged_with_a_second_copy() -> None:
    """A request much slower than recent answers gets a second copy; the first answer wins, the slow one is closed."""
    seen: list[bytes] = []
    stall = b'{"group_ids":["999"]}'
    async with LoopbackServer(await hedging_server(stall, seen)) as server:
        async with BoxClient(
            DeveloperTokenAuth("dev-token"), base_url=server.url, rate_limit=None, retry=FAST_RETRY
        ) as client:
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
    slow_for = 0.0

    async def handler(request: Request) -> Reply:
        seen.append(request.body)
        if len(seen) == 31:
            await asyncio.sleep(slow_for)  # the point: slower than the delay after which a copy would be sent
        return accepted_reply()

    policy = RetryPolicy(initial_backoff=0.01, max_backoff=0.05, total_timeout=20, hedge=False)
    async with (
        LoopbackServer(handler) as server,
        BoxClient(DeveloperTokenAuth("dev-token"), base_url=server.url, rate_limit=None, retry=policy) as client,
    ):
        for i in range(30):
            await client.session_termination.terminate_groups_sessions([i])
        delay = client._sender.hedger.delay
        assert delay is not None  # with hedging on, the next slow answer would get a second copy
        slow_for = 2 * delay
        await client.session_termination.terminate_groups_sessions([30])
        assert client._sender.hedger.hedges == 0
    assert len(seen) == 31
