"""Issue 10, cancellation: whatever cancels a call, and when the client is closed under a bulk job,
nothing is left behind and nothing is lost."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import anyio
import pytest

from box_sessions import BoxClient, BoxError, DeveloperTokenAuth, TerminationReport

from ..support.hostile import Action, HostileServer, Request, accepted, serve

SLOW = 0.6  # seconds the server takes to answer: every request is in flight when the cancel comes
CANCEL_AFTER = 0.5
IDS = 3000
GRACE = 1.0  # seconds the server may take to see the client's connections close


def slow(request: Request) -> Action:
    return accepted(delay=SLOW)


class Input:
    """An async-generator input that records whether its ``finally`` ran."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.closed = False
        self.generator = self._values()

    async def _values(self) -> AsyncGenerator[str, None]:
        try:
            for i in range(self.n):
                yield str(100_000 + i)
        finally:
            self.closed = True


async def bulk(client: BoxClient, source: Input) -> None:
    await client.session_termination.terminate(user_ids=source.generator)


async def streamed(client: BoxClient, source: Input) -> None:
    results = client.session_termination.iter_terminate(user_ids=source.generator)
    async with contextlib.aclosing(results):
        async for _ in results:
            pass


async def single(client: BoxClient, source: Input) -> None:
    await client.session_termination.terminate_users_sessions(user_ids=["1", "2"])


Tasks = set[asyncio.Task[object]]


async def move_on_after(call: Awaitable[None]) -> Tasks:
    """Run ``call`` in an anyio cancel scope (anyio cancels again at every await until the scope exits)."""
    before = asyncio.all_tasks()
    with anyio.move_on_after(CANCEL_AFTER):
        await call
    return asyncio.all_tasks() - before


async def cancel_twice(call: Awaitable[None]) -> Tasks:
    """Run ``call`` in a task, cancel it, and cancel it again while it handles the first cancel."""
    before = asyncio.all_tasks()
    task = asyncio.ensure_future(call)
    await asyncio.sleep(CANCEL_AFTER)
    task.cancel()
    await asyncio.sleep(0)  # the task is now handling the first cancel
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return asyncio.all_tasks() - before


async def wait_for(call: Awaitable[None]) -> Tasks:
    """Run ``call`` under `asyncio.wait_for`, which cancels it once and waits for it."""
    before = asyncio.all_tasks()
    with pytest.raises(asyncio.TimeoutError):  # not the builtin on Python 3.10
        await asyncio.wait_for(call, CANCEL_AFTER)
    return asyncio.all_tasks() - before


OPS: dict[str, Callable[[BoxClient, Input], Awaitable[None]]] = {
    "terminate": bulk,
    "iter_terminate": streamed,
    "terminate_users_sessions": single,
}
SCOPES: dict[str, Callable[[Awaitable[None]], Awaitable[Tasks]]] = {
    "anyio.move_on_after": move_on_after,
    "cancel-twice": cancel_twice,
    "asyncio.wait_for": wait_for,
}


def cases() -> list[Any]:
    params = []
    for scope in SCOPES:
        for op in OPS:
            params.append(pytest.param(scope, op, id=f"{op}-{scope}"))
    return params


async def until_idle(server: HostileServer) -> None:
    deadline = time.monotonic() + GRACE
    while server.busy:
        assert time.monotonic() < deadline, f"the server still answers {server.busy} requests"
        await asyncio.sleep(0.01)


@pytest.mark.parametrize(("scope", "op"), cases())
async def test_cancellation_leaves_nothing_behind(scope: str, op: str) -> None:
    """A cancelled call leaves no task pending, no request open, its input closed, and the client closable."""
    source = Input(IDS)
    with serve(slow) as server:
        client = BoxClient(DeveloperTokenAuth("dev-token"), base_url=server.url)
        try:
            left = await asyncio.wait_for(SCOPES[scope](OPS[op](client, source)), 10)
            assert not left, f"{len(left)} tasks left behind: {sorted(t.get_name() for t in left)[:3]}"
            assert server.count() > 0  # the cancel came while requests were in flight
            await until_idle(server)
            if op != "terminate_users_sessions":
                assert source.closed, "the async-generator input was not closed"
        finally:
            await client.aclose()
            await source.generator.aclose()


async def test_closing_the_client_stops_a_bulk_job_with_a_report() -> None:
    """aclose() during a 5,000-id job: it stops sending and returns a report stopped by a "closed" BoxError."""
    ids = [str(100_000 + i) for i in range(5000)]
    with serve(slow) as server:
        client = BoxClient(DeveloperTokenAuth("dev-token"), base_url=server.url)
        job = asyncio.ensure_future(client.session_termination.terminate(user_ids=ids))
        try:
            await asyncio.sleep(CANCEL_AFTER)
            closed_at = time.monotonic()
            await client.aclose()
            report = await asyncio.wait_for(job, 10)
            await asyncio.sleep(0.3)
            late = [r for r in server.requests() if r.received_at > closed_at + 0.2]
        finally:
            if not job.done():
                job.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await job
            await client.aclose()
    assert isinstance(report, TerminationReport)
    assert late == []
    assert isinstance(report.stopped_by, BoxError), report.stopped_by
    assert "closed" in str(report.stopped_by)
    assert all(isinstance(failure.error, BoxError) for failure in report.failed), {
        type(failure.error).__name__ for failure in report.failed
    }
    seen = collections.Counter([*report.terminated["user_ids"], *(str(f.value) for f in report.failed)])
    assert set(seen) == set(ids)
    assert max(seen.values()) == 1
