"""The gate: requests wait for a connection in our own first-in-first-out queue, never in httpcore's pool."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

import box_sessions
from box_sessions._sending._gate import DEFAULT_POOL_SIZE, Gate, pool_size
from box_sessions.testing import FakeBox, LoopbackServer, Reply, Request

from ..conftest import ACCEPTED, json_reply, until
from ..support.http import httpx


async def hold(gate: Gate, name: str, entered: list[str], release: asyncio.Event) -> None:
    async with gate.slot(None):
        entered.append(name)
        await release.wait()


async def test_admits_at_most_its_size_and_the_rest_in_arrival_order() -> None:
    """With room for 2, five holders enter 2 at once, then one by one in the order they came."""
    gate, entered = Gate(2), list[str]()
    releases = [asyncio.Event() for _ in range(5)]
    tasks = [asyncio.create_task(hold(gate, str(i), entered, releases[i])) for i in range(5)]
    await until(lambda: gate.waiting == 3)
    assert entered == ["0", "1"]

    def entered_are(count: int) -> Callable[[], bool]:
        return lambda: len(entered) == count

    for count, i in enumerate((1, 0, 2), start=3):
        releases[i].set()
        await until(entered_are(count))
    assert entered == ["0", "1", "2", "3", "4"]
    for release in releases:
        release.set()
    await asyncio.gather(*tasks)
    assert (gate.active, gate.waiting) == (0, 0)


async def test_a_cancelled_waiter_leaves_the_queue() -> None:
    """A waiter cancelled in the queue frees its place: the next one enters when the holder leaves."""
    gate, entered, release = Gate(1), list[str](), asyncio.Event()
    holder = asyncio.create_task(hold(gate, "holder", entered, release))
    cancelled = asyncio.create_task(hold(gate, "cancelled", entered, release))
    after = asyncio.create_task(hold(gate, "after", entered, release))
    await until(lambda: gate.waiting == 2)
    cancelled.cancel()
    await until(lambda: gate.waiting == 1)
    release.set()
    await asyncio.gather(holder, after)
    assert entered == ["holder", "after"]
    assert (gate.active, gate.waiting) == (0, 0)


async def test_a_place_handed_to_a_waiter_cancelled_at_that_moment_passes_on() -> None:
    """A waiter cancelled just as its place comes never keeps it: the next one gets it."""
    gate, entered, release = Gate(1), list[str](), asyncio.Event()
    holder = asyncio.create_task(hold(gate, "holder", entered, release))
    unlucky = asyncio.create_task(hold(gate, "unlucky", entered, asyncio.Event()))
    after = asyncio.create_task(hold(gate, "after", entered, release))
    await until(lambda: gate.waiting == 2)
    release.set()
    await until(holder.done)  # the holder left and handed its place to "unlucky" ...
    unlucky.cancel()  # ... which is cancelled before it runs again
    await asyncio.gather(holder, after)
    assert entered == ["holder", "after"]
    assert (gate.active, gate.waiting) == (0, 0)


async def test_a_wait_past_the_timeout_raises_httpx_pool_timeout() -> None:
    """A waiter that gets no place in time raises httpx.PoolTimeout, as httpx's pool would, and leaves."""
    gate, release = Gate(1), asyncio.Event()
    holder = asyncio.create_task(hold(gate, "holder", [], release))
    await until(lambda: gate.active == 1)
    with pytest.raises(httpx.PoolTimeout):
        async with gate.slot(0.01):
            pass
    assert gate.waiting == 0
    release.set()
    await holder
    assert gate.active == 0


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        pytest.param(httpx.Limits(max_connections=7), 7, id="seven"),
        pytest.param(httpx.Limits(max_connections=None), None, id="unlimited"),
    ],
)
async def test_pool_size_is_read_from_the_http_client(limits: httpx.Limits, expected: int | None) -> None:
    """The gate's size is the caller's httpx.Limits.max_connections."""
    async with httpx.AsyncClient(limits=limits) as http:
        assert pool_size(http) == expected


async def test_pool_size_of_a_custom_transport_is_the_default() -> None:
    """A client whose transport has no pool to read gets httpx's default of 100."""
    async with httpx.AsyncClient(transport=FakeBox().transport()) as http:
        assert pool_size(http) == DEFAULT_POOL_SIZE


async def test_requests_never_queue_in_httpcore_pool() -> None:
    """Twenty concurrent calls through a pool of 3: httpcore never holds more than 3 requests at once."""
    seen: list[int] = []
    http = httpx.AsyncClient(limits=httpx.Limits(max_connections=3))

    async def handler(_request: Request) -> Reply:
        seen.append(len(http._transport._pool._requests))  # type: ignore[attr-defined]
        await asyncio.sleep(0.02)  # the server's answer time: the calls overlap, as they would against Box
        return json_reply(202, ACCEPTED)

    async with (
        LoopbackServer(handler) as server,
        http,
        box_sessions.BoxClient(
            box_sessions.DeveloperTokenAuth("dev-token"), base_url=server.url, http_client=http, rate_limit=None
        ) as client,
    ):
        manager = client.session_termination
        await asyncio.gather(*(manager.terminate_users_sessions(user_ids=[str(i)]) for i in range(1, 21)))
    assert len(seen) == 20
    assert max(seen) <= 3
