"""Issue 10, pacing: the rate limiter gives back slots nobody used, and a long retry-after quiets the client."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from box_sessions import (
    BoxClient,
    BoxTimeoutError,
    DeveloperTokenAuth,
    RateLimit,
    RateLimitError,
    RetryPolicy,
    SessionTerminationMessage,
)

from ..conftest import terminate
from ..support.hostile import Action, Answer, Request, accepted, serve

USERS = "/2.0/users/terminate_sessions"
PER_MINUTE = 60  # one slot a second
INTERVAL = 60 / PER_MINUTE
BURST = 30
QUIET = INTERVAL * 1.1  # one interval of quiet, and a little more for a loaded machine
AT_ONCE = 0.5  # a call sent "at once" leaves within this many seconds


def answer_at_once(request: Request) -> Action:
    return accepted()


async def test_slots_of_calls_refused_for_their_deadline_are_given_back() -> None:
    """After a burst mostly refused for its deadline, one quiet interval lets the next call out at once."""
    with serve(answer_at_once) as server:
        async with BoxClient(
            DeveloperTokenAuth("dev-token"),
            base_url=server.url,
            rate_limit=RateLimit(requests_per_minute=PER_MINUTE),
            retry=RetryPolicy(total_timeout=2),
        ) as client:
            outcomes = await asyncio.wait_for(
                asyncio.gather(*(terminate(client, str(i)) for i in range(BURST)), return_exceptions=True), 10
            )
            refused = sum(isinstance(outcome, BoxTimeoutError) for outcome in outcomes)
            assert refused >= BURST - 3
            assert server.count(USERS) == BURST - refused
            await asyncio.sleep(QUIET)
            started = time.monotonic()
            message = await asyncio.wait_for(terminate(client), 5)
            elapsed = time.monotonic() - started
    assert isinstance(message, SessionTerminationMessage)
    assert elapsed < AT_ONCE


async def test_slots_of_calls_cancelled_while_waiting_are_given_back() -> None:
    """After 30 callers are cancelled waiting for the limiter, one quiet interval lets the next call out at once."""
    with serve(answer_at_once) as server:
        async with BoxClient(
            DeveloperTokenAuth("dev-token"),
            base_url=server.url,
            rate_limit=RateLimit(requests_per_minute=PER_MINUTE),
            retry=RetryPolicy(total_timeout=60),
        ) as client:
            first = asyncio.ensure_future(terminate(client))
            await asyncio.sleep(0.05)  # the first call takes the free slot
            waiting = [asyncio.ensure_future(terminate(client, str(i))) for i in range(2, BURST + 2)]
            await asyncio.sleep(0.3)
            assert not any(task.done() for task in waiting)
            for task in waiting:
                task.cancel()
            outcomes = await asyncio.gather(*waiting, return_exceptions=True)
            assert all(isinstance(outcome, asyncio.CancelledError) for outcome in outcomes)
            await first
            assert server.count(USERS) == 1
            await asyncio.sleep(QUIET)
            started = time.monotonic()
            with contextlib.suppress(asyncio.TimeoutError):  # held for the cancelled ones' slots: elapsed says so
                await asyncio.wait_for(terminate(client), 2 + AT_ONCE)
            elapsed = time.monotonic() - started
        sent = server.count(USERS)
    assert elapsed < AT_ONCE
    assert sent == 2


def rate_limited(request: Request) -> Action:
    return Answer(429, b'{"type": "error", "status": 429, "code": "rate_limit_exceeded"}', {"retry-after": "200"})


async def test_a_retry_after_past_the_cap_quiets_the_whole_client() -> None:
    """Answers of 429 retry-after 200 (cap 120): a 5,000-id job fails every id at once, sending about one wave."""
    ids = [str(1000 + i) for i in range(5000)]
    with serve(rate_limited) as server:
        async with BoxClient(
            DeveloperTokenAuth("dev-token"),
            base_url=server.url,
            rate_limit=None,
            retry=RetryPolicy(max_retry_after=120),
        ) as client:
            started = time.monotonic()
            report = await asyncio.wait_for(client.session_termination.terminate(user_ids=ids), 10)
            elapsed = time.monotonic() - started
            sent = server.count(USERS)
            assert sent <= 16 + 4  # max_concurrency's first wave, and a few more
            assert elapsed < 1.0
            assert sorted(str(failure.value) for failure in report.failed) == sorted(ids)
            assert all(isinstance(failure.error, RateLimitError) for failure in report.failed)
            assert all(failure.error.retry_after is not None for failure in report.failed)  # type: ignore[attr-defined]

            started = time.monotonic()
            with pytest.raises(RateLimitError) as raised:
                await asyncio.wait_for(terminate(client), 5)
            elapsed = time.monotonic() - started
            assert server.count(USERS) == sent  # not sent: the client is cooling down
    assert elapsed < 0.2
    assert raised.value.retry_after is not None
    assert 190 <= raised.value.retry_after <= 200
