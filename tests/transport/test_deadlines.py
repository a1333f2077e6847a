"""Deadlines: `total_timeout` and `timeout=` are wall-clock bounds, even against a server that drips its answer.

Here the wall clock is the promise itself: a dripped answer takes the server half a minute, and
the call must end at its deadline instead, with `BoxTimeoutError`. Each test asserts that error,
and the elapsed time is bounded generously (the deadline plus `SLACK`), far below the drip's own
length, so that a busy machine cannot break it. An attempt given up at ``timeout=`` is also seen
hanging up on the server. A call given up at ``total_timeout`` is not: its last attempt's own
limit runs out at the same instant, and the second cancel it makes sometimes interrupts httpcore's
clean-up of the connection, which then stays open, the server still dripping into it, until the
client closes (seen about once in sixteen runs for a token request; a bug of the package, the
one `test_cancellation` marks for a call cancelled twice).
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest

import box_sessions
from box_sessions import BoxClient, BoxTimeoutError, CCGAuth, DeveloperTokenAuth, RetryPolicy

from ..conftest import ACCEPTED, terminate, token_body
from ..support.hostile import Action, Drip, HostileServer, Request, accepted, serve

TOTAL = 2.0  # RetryPolicy(total_timeout=)
ATTEMPT = 1.0  # BoxClient(timeout=)
DRIP = 0.3  # seconds per byte: each read gets a byte well within ATTEMPT; a whole answer takes over 20 s
SLACK = 5.0  # what a loaded machine may add to a deadline: still far below the drip's length
OUTER = TOTAL + SLACK + 1.0  # a failing test ends here instead of when the server is done dripping
USERS = "/2.0/users/terminate_sessions"
TOKEN = "/oauth2/token"
ACCEPTED_BODY = json.dumps(ACCEPTED).encode()
TOKEN_BODY = json.dumps(token_body("acc3ss-1")).encode()
JSON = {"content-type": "application/json"}


async def hung_up(server: HostileServer) -> None:
    """Wait until the server answers nothing more: the drip ended because the client hung up.

    A drip ends on its own only after more than 20 s, past the wait's bound.
    """
    await server.wait_until(lambda: server.busy == 0)


async def seconds_to_time_out(client: BoxClient) -> float:
    """How long one call took to raise `BoxTimeoutError` (a failing test ends at `OUTER`)."""
    started = time.monotonic()
    with pytest.raises(BoxTimeoutError):
        await asyncio.wait_for(terminate(client), OUTER)
    return time.monotonic() - started


@pytest.mark.parametrize("part", ["head", "body"], ids=["drip-in-headers", "drip-in-202-body"])
async def test_total_timeout_is_wall_clock_against_a_dripping_answer(part: str) -> None:
    """A call whose answer drips one byte every 0.3 s raises BoxTimeoutError by total_timeout, not when it ends."""

    def handler(request: Request) -> Action:
        return Drip(202, ACCEPTED_BODY, JSON, interval=DRIP, part="head" if part == "head" else "body")

    retry = RetryPolicy(total_timeout=TOTAL, initial_backoff=0.05, max_backoff=0.1)
    with serve(handler) as server:
        async with BoxClient(
            DeveloperTokenAuth("dev-token"), base_url=server.url, timeout=ATTEMPT, retry=retry, rate_limit=None
        ) as client:
            elapsed = await seconds_to_time_out(client)
        assert server.count(USERS) >= 1
    assert elapsed <= TOTAL + SLACK  # the promise: by the deadline, not by the end of the drip


async def test_total_timeout_is_wall_clock_against_a_dripping_token_answer(ccg: CCGAuth) -> None:
    """A CCG call whose token answer drips one byte every 0.3 s raises BoxTimeoutError by total_timeout."""

    def handler(request: Request) -> Action:
        if request.path == TOKEN:
            return Drip(200, TOKEN_BODY, JSON, interval=DRIP, part="head")
        return accepted()

    retry = RetryPolicy(total_timeout=TOTAL, initial_backoff=0.05, max_backoff=0.1)
    with serve(handler) as server:
        async with BoxClient(ccg, base_url=server.url, timeout=ATTEMPT, retry=retry, rate_limit=None) as client:
            elapsed = await seconds_to_time_out(client)
        assert server.count(TOKEN) >= 1
        assert server.count(USERS) == 0
    assert elapsed <= TOTAL + SLACK  # the promise: by the deadline, not by the end of the drip


async def test_timeout_bounds_an_attempt_as_a_whole() -> None:
    """An attempt dripping past timeout= is given up after about timeout=; the retry's prompt 202 is returned."""

    def handler(request: Request) -> Action:
        if request.number == 1:
            return Drip(202, ACCEPTED_BODY, JSON, interval=DRIP, part="head")
        return accepted()

    retry = RetryPolicy(total_timeout=30, initial_backoff=0.01, max_backoff=0.01)
    with serve(handler) as server:
        async with BoxClient(
            DeveloperTokenAuth("dev-token"), base_url=server.url, timeout=ATTEMPT, retry=retry, rate_limit=None
        ) as client:
            started = time.monotonic()
            message = await asyncio.wait_for(client.session_termination.terminate_users_sessions(user_ids=["1"]), OUTER)
            elapsed = time.monotonic() - started
            await hung_up(server)  # the dripping attempt's connection was closed, not read to its end
        assert server.count(USERS) == 2
    assert isinstance(message, box_sessions.SessionTerminationMessage)
    assert message.message == ACCEPTED["message"]
    # The promise: given up after timeout= (never before it), not at the end of the drip.
    assert ATTEMPT * 0.9 <= elapsed <= ATTEMPT + SLACK
