"""Issue 17, connections rows: the clients a share connects through, and how many connections it opens.

A valkey-py client (``valkey.asyncio.Valkey``, a fork of redis-py, not a subclass) talks to the
same servers; the issue allows accepting it or saying plainly why not: this test is written for
accepting it. A share's connections are a bounded pool, not one per batch in flight: two
processes with 16 batches each in flight filled a 2 MB ``maxmemory`` with connection buffers.
"""

from __future__ import annotations

import asyncio

import pytest

from box_sessions import BoxClient, RateLimit
from box_sessions.redis import RedisShare
from box_sessions.testing import FakeBox, FakeClock

from ..support.box_calls import BOUND, ccg, terminate, warnings_of
from ..support.redis_server import RedisServer

pytestmark = pytest.mark.redis

#: The most connections one share may open: the default the issue asks for, chosen here.
POOL_LIMIT = 8
#: Batches in flight in the bulk job (the bulk API's default).
IN_FLIGHT = 16


def connections_received(server: RedisServer) -> int:
    """Connections ``server`` has accepted since it started (this look's own included)."""
    return int(server.info("stats")["total_connections_received"])


async def test_a_share_opens_at_most_8_connections_under_16_batches_in_flight(redis_server: RedisServer) -> None:
    """A paced bulk job with 16 batches in flight opens at most `POOL_LIMIT` Redis connections through its share."""
    fake = FakeBox(latency=0.01)  # answers take a little while: the batches really are in flight together
    ids = [str(n) for n in range(1, 4 * IN_FLIGHT + 1)]  # four rounds of batches
    before = connections_received(redis_server)
    async with (
        fake.serve() as url,
        RedisShare(redis_server.url) as share,
        BoxClient(ccg(fake), base_url=url, rate_limit=RateLimit(), shared=share, clock=FakeClock()) as client,
    ):
        report = await asyncio.wait_for(
            client.session_termination.terminate(user_ids=ids, batch_size=1, max_concurrency=IN_FLIGHT), BOUND
        )
        opened = connections_received(redis_server) - before - 1  # less the look's own connection
    assert report.ok, report
    assert 1 <= opened <= POOL_LIMIT


async def test_a_valkey_client_is_accepted(redis_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    """RedisShare(client=valkey.asyncio.Valkey(...)): two paced CCG clients share one token through it, no WARNING."""
    valkey = pytest.importorskip("valkey.asyncio")
    own = valkey.Valkey.from_url(redis_server.url)
    fake = FakeBox()
    try:
        async with fake.serve() as url, RedisShare(client=own) as share:
            for auth in (ccg(fake), ccg(fake)):
                async with BoxClient(auth, base_url=url, rate_limit=RateLimit(), shared=share) as client:
                    await terminate(client)
    finally:
        await own.aclose()
    assert fake.token_requests == 1
    assert warnings_of(caplog) == []
