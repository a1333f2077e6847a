"""Issue 17, restart row: Redis killed (``kill -9``) and restarted while Box holds an OAuth 2.0 refresh's answer.

Box has spent the old refresh token; the new pair exists only in the answer on its way. Without
persistence the restarted Redis is empty; with ``appendonly yes`` it holds the pair saved before,
whose refresh token Box has spent. The promise: the refreshing process's call succeeds or fails
with `AuthenticationError` (``token_store_unavailable``), Box never receives a spent refresh
token, and the next process (the command line runs one call per process) goes on.
"""

from __future__ import annotations

import asyncio

import pytest

from box_sessions import BoxClient
from box_sessions.redis import RedisShare
from box_sessions.testing import FakeBox, FakeClock, LoopbackServer

from ..support.box_calls import (
    ALLOWED_OUTCOMES,
    BOUND,
    HeldRefresh,
    oauth2,
    outcome,
    spent_refresh_tokens_sent,
    terminate,
)
from .conftest import StartRedis

pytestmark = pytest.mark.redis

#: Seconds past an access token's life: the client's clock moves on so that the next call refreshes.
DUE = 3600.0


@pytest.mark.parametrize("appendonly", [True, False], ids=["appendonly", "no-persistence"])
async def test_a_restart_during_a_refresh_loses_no_pair(start_redis: StartRedis, appendonly: bool) -> None:
    """kill -9 and restart while Box holds the refresh's answer: the call ends as promised, the next process goes on."""
    server = start_redis(appendonly=appendonly)
    fake = FakeBox()
    first = fake.issue_refresh_token()
    held = HeldRefresh(fake)
    clock = FakeClock()
    async with LoopbackServer(held.handle) as box:
        async with (
            RedisShare(server.url) as share,
            BoxClient(
                oauth2(fake, share.token_store("user-42"), refresh_token=first),
                base_url=box.url,
                rate_limit=None,
                clock=clock,
            ) as client,
        ):
            outcomes = [await outcome(terminate(client))]  # seeds the store, refreshes, saves
            clock.advance(DUE)
            held.arm()
            call = asyncio.create_task(outcome(terminate(client)))
            await asyncio.wait_for(held.arrived.wait(), BOUND)  # Box has spent the refresh token
            server.restart()
            held.release()
            outcomes.append(await call)
        # That process has exited; the next one starts as it did, with the user's first token.
        async with (
            RedisShare(server.url) as later,
            BoxClient(oauth2(fake, later.token_store("user-42"), refresh_token=first), base_url=box.url) as following,
        ):
            following_outcome = await outcome(terminate(following))
    assert set(outcomes) <= ALLOWED_OUTCOMES, outcomes
    assert spent_refresh_tokens_sent(fake) == 0
    assert following_outcome == "ok"
