"""Issue 17, Sentinel row: a ``Sentinel(...).master_for(...)`` client as ``RedisShare(client=...)`` through a failover.

The issue measured that this holds (600/600 ids, one token): this test keeps it so. A failover has
three phases for a client: before; after the Sentinel names the new master while the old one, not
yet demoted, still takes the writes of connections left on it; and after the Sentinel demotes it
and closes those connections.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.sentinel import Sentinel

from box_sessions import BoxClient, RateLimit, RetryPolicy
from box_sessions.redis import RedisShare
from box_sessions.testing import FakeBox, LoopbackServer, Reply, Request

from ..support.box_calls import BOUND, ccg
from ..support.redis_sentinel import SentinelGroup

pytestmark = pytest.mark.redis

#: Ids in the job, one per request; the failover starts at the first mark, demotion at the second.
IDS = 60
MARKS = (20, 40)


#: A client whose requests Box may hold for seconds: paced, no hedging, a long timeout.
HELD: dict[str, Any] = {"rate_limit": RateLimit(), "retry": RetryPolicy(hedge=False), "timeout": 2 * BOUND}


@pytest.fixture
async def master_client(sentinel_group: SentinelGroup) -> AsyncIterator[Redis]:
    """``Sentinel(...).master_for("box")``: a redis.asyncio.Redis that follows the master; closed at teardown."""
    sentinel = Sentinel(sentinel_group.sentinels, socket_timeout=2.0)  # type: ignore[no-untyped-call]
    client = sentinel.master_for(sentinel_group.name, socket_timeout=2.0)
    try:
        yield client
    finally:
        await client.aclose()
        for connection in sentinel.sentinels:
            await connection.aclose()


def _last_commands(clients: str) -> list[str]:
    """The last command of each connection in a ``CLIENT LIST`` answer."""
    fields = [field for line in clients.splitlines() for field in line.split()]
    return [field.removeprefix("cmd=") for field in fields if field.startswith("cmd=")]


async def test_a_failover_mid_job_terminates_every_id_once_with_one_token(
    sentinel_group: SentinelGroup, master_client: Redis
) -> None:
    """SENTINEL FAILOVER mid-job, the old master demoted mid-job too: every id terminated once, one token request."""
    fake = FakeBox()
    seen = 0
    reached = [asyncio.Event(), asyncio.Event()]
    passed = [asyncio.Event(), asyncio.Event()]  # the failover done; the old master demoted

    async def through_failover(request: Request) -> Reply:
        nonlocal seen
        if request.path.startswith("/2.0/"):
            seen += 1
            for mark, arrived, go_on in zip(MARKS, reached, passed, strict=True):
                if seen == mark:
                    arrived.set()
                if seen >= mark:
                    await asyncio.wait_for(go_on.wait(), BOUND)  # the job is in flight across the phase
        return await fake.handle(request)

    ids = [str(n) for n in range(1, IDS + 1)]
    async with (
        LoopbackServer(through_failover) as box,
        RedisShare(client=master_client) as share,
        # Box is held here while Sentinel demotes (about 10 s): no hedged second copy and no
        # timeout of a held request, which Box would then count twice.
        BoxClient(ccg(fake), base_url=box.url, shared=share, **HELD) as client,
    ):
        job = asyncio.create_task(client.session_termination.terminate(user_ids=ids, batch_size=1, max_concurrency=4))
        await asyncio.wait_for(reached[0].wait(), BOUND)
        old = sentinel_group.master()
        new = await asyncio.to_thread(sentinel_group.failover)
        passed[0].set()
        await asyncio.wait_for(reached[1].wait(), BOUND)
        await asyncio.to_thread(sentinel_group.wait_demoted, old)
        passed[1].set()
        report = await asyncio.wait_for(job, BOUND)
    assert report.ok, report
    assert collections.Counter(fake.terminated["user_ids"]) == collections.Counter(ids)  # each id once
    assert fake.token_requests == 1
    # After the demotion the share's pacing scripts ran on the new master.
    assert "evalsha" in _last_commands(new.command("CLIENT", "LIST").decode())
