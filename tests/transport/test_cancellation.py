"""Cancellation: whatever cancels a call, and when the client is closed under a bulk job, nothing is left
behind and nothing is lost.

The server stalls every answer until the client hangs up, so every request is in flight when the
cancel comes; each cancel comes once the server holds a request, not after a guessed time.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import anyio
import pytest

from box_sessions import BoxClient, BoxError, DeveloperTokenAuth, TerminationReport

from ..support.hostile import Action, Request, Stall, serve
from ..support.http import HTTP_STACK

IDS = 3000


def stall(request: Request) -> Action:
    return Stall()


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
#: Waits until the server holds a request of the call: the moment to cancel it.
InFlight = Callable[[], Awaitable[None]]


async def move_on_after(call: Awaitable[None], in_flight: InFlight) -> Tasks:
    """Run ``call`` in an anyio cancel scope whose deadline comes once a request is in flight.

    (anyio cancels again at every await until the scope exits.)
    """
    before = asyncio.all_tasks()
    with anyio.move_on_after(60) as scope:

        async def deadline_now() -> None:
            await in_flight()
            scope.deadline = anyio.current_time()

        reached = asyncio.ensure_future(deadline_now())
        await call
    await reached
    return asyncio.all_tasks() - before


async def cancel_twice(call: Awaitable[None], in_flight: InFlight) -> Tasks:
    """Run ``call`` in a task, cancel it, and cancel it again while it handles the first cancel."""
    before = asyncio.all_tasks()
    task = asyncio.ensure_future(call)
    await in_flight()
    task.cancel()
    await asyncio.sleep(0)  # one turn: the task is now handling the first cancel
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return asyncio.all_tasks() - before


async def wait_for(call: Awaitable[None], in_flight: InFlight) -> Tasks:
    """Run ``call`` under `asyncio.wait_for`, which cancels it once and waits for it.

    The call runs as a task of its own from the start, so that `wait_for`'s timeout can be made to
    come once a request is in flight.
    """
    before = asyncio.all_tasks()
    task = asyncio.ensure_future(call)
    await in_flight()
    with pytest.raises(asyncio.TimeoutError):  # not the builtin on Python 3.10
        await asyncio.wait_for(task, 0.01)
    return asyncio.all_tasks() - before


OPS: dict[str, Callable[[BoxClient, Input], Awaitable[None]]] = {
    "terminate": bulk,
    "iter_terminate": streamed,
    "terminate_users_sessions": single,
}
SCOPES: dict[str, Callable[[Awaitable[None], InFlight], Awaitable[Tasks]]] = {
    "anyio.move_on_after": move_on_after,
    "cancel-twice": cancel_twice,
    "asyncio.wait_for": wait_for,
}


#: A single call cancelled again while it handles the first cancel keeps its connection, with the
#: request in flight, until the client closes: httpcore closes a connection in an anyio shield on
#: cancellation, which a second raw `task.cancel()` interrupts, and the single call runs in its
#: caller's task (a bulk job's requests run in tasks of their own, which the job cancels once).
#: Under httpx only: httpx2's httpcore2 closes the connection whatever the second cancel interrupts.
SECOND_CANCEL_LEAVES_THE_REQUEST_OPEN = pytest.mark.xfail(
    HTTP_STACK == "httpx",
    strict=True,
    reason="package bug: terminate_users_sessions cancelled twice leaves its request open until aclose() "
    "(README: 'a cancelled call, under task.cancel() (once or twice) ... leaves no request open')",
)


def cases() -> list[Any]:
    params = []
    for scope in SCOPES:
        for op in OPS:
            marks = (
                [SECOND_CANCEL_LEAVES_THE_REQUEST_OPEN]
                if (scope, op) == ("cancel-twice", "terminate_users_sessions")
                else []
            )
            params.append(pytest.param(scope, op, id=f"{op}-{scope}", marks=marks))
    return params


@pytest.mark.parametrize(("scope", "op"), cases())
async def test_cancellation_leaves_nothing_behind(scope: str, op: str) -> None:
    """A cancelled call leaves no task pending, no request open, its input closed, and the client closable."""
    source = Input(IDS)
    with serve(stall) as server:
        client = BoxClient(DeveloperTokenAuth("dev-token"), base_url=server.url)
        try:
            in_flight = lambda: server.wait_until(lambda: server.busy > 0)  # noqa: E731 - a name for the wait
            left = await asyncio.wait_for(SCOPES[scope](OPS[op](client, source), in_flight), 10)
            assert not left, f"{len(left)} tasks left behind: {sorted(t.get_name() for t in left)[:3]}"
            assert server.count() > 0  # the cancel came while requests were in flight
            # Each stalled answer ends only when the client hangs up: none is left open.
            await server.wait_until(lambda: server.busy == 0 and server.open_connections == 0)
            if op != "terminate_users_sessions":
                assert source.closed, "the async-generator input was not closed"
        finally:
            await client.aclose()
            await source.generator.aclose()


async def test_closing_the_client_stops_a_bulk_job_with_a_report() -> None:
    """aclose() during a 5,000-id job: it stops sending and returns a report stopped by a "closed" BoxError."""
    ids = [str(100_000 + i) for i in range(5000)]
    wave = 8  # requests in flight at once: all of them stall until the client hangs up
    closing = threading.Event()
    late: list[Request] = []

    def stall_and_note_late(request: Request) -> Action:
        if closing.is_set():
            late.append(request)
        return Stall()

    with serve(stall_and_note_late) as server:
        client = BoxClient(DeveloperTokenAuth("dev-token"), base_url=server.url, rate_limit=None)
        before = asyncio.all_tasks()
        job = asyncio.ensure_future(client.session_termination.terminate(user_ids=ids, max_concurrency=wave))
        try:
            # The whole first wave has reached the server: from now on, nothing the client had
            # sent is still on its way, and any request that arrives was sent after the close.
            await server.wait_until(lambda: server.busy == wave)
            closing.set()
            await client.aclose()
            report = await asyncio.wait_for(job, 10)
            assert asyncio.all_tasks() - before == set()  # nothing of the client runs: nothing can send later
            await server.wait_until(lambda: server.open_connections == 0)  # the server saw each connection close
        finally:
            if not job.done():
                job.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await job
            await client.aclose()
        received = server.count()
    assert isinstance(report, TerminationReport)
    assert late == []
    assert received == wave
    assert isinstance(report.stopped_by, BoxError), report.stopped_by
    assert "closed" in str(report.stopped_by)
    assert all(isinstance(failure.error, BoxError) for failure in report.failed), {
        type(failure.error).__name__ for failure in report.failed
    }
    seen = collections.Counter([*report.terminated["user_ids"], *(str(f.value) for f in report.failed)])
    assert set(seen) == set(ids)
    assert max(seen.values()) == 1
