"""Issue 17, eviction row: the OAuth 2.0 pair lost from Redis (evicted, or flushed) while a process lives.

Under ``volatile-lru`` (managed services' default) the library's keys, which all carry a TTL, are
the only ones Redis may evict; under ``allkeys-lru`` any key may go; ``FLUSHALL`` drops them all.
The promise: every call of a live process succeeds or fails with `AuthenticationError` (code
``token_store_unavailable``), Box never receives a refresh token it has spent, and the next
process goes on. Each process here is started as a worker is, with the user's first refresh
token, which the store has long since replaced.
"""

from __future__ import annotations

import asyncio

import pytest

from box_sessions import BoxClient, BoxTimeoutError, OAuth2Tokens
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
from ..support.redis_memory import drop_filler, fill_memory, maxmemory_args, missing
from ..support.redis_server import RedisServer
from .conftest import StartRedis

pytestmark = pytest.mark.redis

#: Where RedisShare (default prefix) keeps user-42's pair (in braces: a hash tag it shares with its lock).
PAIR = "box-sessions:oauth2:{user-42}"
#: Seconds past an access token's life: the client's clock moves on so that the next call refreshes.
DUE = 3600.0


def lose_the_pair(server: RedisServer, loss: str) -> None:
    """Put ``server`` under the pressure ``loss`` says, then let it pass: memory filled, or FLUSHALL.

    Under ``volatile-lru`` the pair, which carries no time to live, is never evicted: the fill runs
    until Redis refuses a write (nothing else it may evict), and the pair is still there. Under
    ``allkeys-lru`` it is evicted; FLUSHALL drops it.
    """
    if loss == "flushall":
        server.command("FLUSHALL")
    elif loss == "volatile-lru":
        filled = fill_memory(server)  # until OOM: nothing with a time to live is left to evict
        assert filled.refused, filled
        assert missing(server, [PAIR]) == frozenset()  # kept: volatile-lru may not evict it
        drop_filler(server)
        return
    else:
        filled = fill_memory(server, watched=(PAIR,))
        assert filled.evicted == {PAIR}, filled
        drop_filler(server)  # the pressure passes: Redis takes writes again
    assert missing(server, [PAIR]) == {PAIR}


@pytest.mark.parametrize("loss", ["volatile-lru", "allkeys-lru", "flushall"])
@pytest.mark.parametrize("started", ["with-first-token", "from-store"])
async def test_a_pair_lost_between_refreshes_is_never_refreshed_with_a_spent_token(
    start_redis: StartRedis, loss: str, started: str
) -> None:
    """The pair evicted or flushed between two refreshes: the live process goes on, Box sees no spent token."""
    server = start_redis(None if loss == "flushall" else maxmemory_args("4mb", loss))
    fake = FakeBox()
    first = fake.issue_refresh_token()
    given = first if started == "with-first-token" else None  # what each process is started with
    clock = FakeClock()
    outcomes = []
    async with fake.serve() as url, RedisShare(server.url) as share:
        if given is None:
            await share.token_store("user-42").save(OAuth2Tokens(refresh_token=first))
        live = oauth2(fake, share.token_store("user-42"), refresh_token=given)
        async with BoxClient(live, base_url=url, rate_limit=None, clock=clock) as client:
            outcomes.append(await outcome(terminate(client)))  # seeds the store, refreshes, saves the new pair
            lose_the_pair(server, loss)
            for _ in range(2):
                clock.advance(DUE)
                outcomes.append(await outcome(terminate(client)))
        async with (
            RedisShare(server.url) as later,
            BoxClient(oauth2(fake, later.token_store("user-42"), refresh_token=given), base_url=url) as following,
        ):
            following_outcome = await outcome(terminate(following))
    assert set(outcomes) <= ALLOWED_OUTCOMES, outcomes
    assert spent_refresh_tokens_sent(fake) == 0
    assert following_outcome == "ok"


async def test_a_pair_flushed_during_a_refresh_is_saved_again_by_its_refresher(start_redis: StartRedis) -> None:
    """FLUSHALL while Box holds a refresh's answer: the refresher saves the new pair, the next process goes on."""
    server = start_redis()
    fake = FakeBox()
    first = fake.issue_refresh_token()
    held = HeldRefresh(fake)
    clock = FakeClock()
    async with LoopbackServer(held.handle) as box, RedisShare(server.url) as share:
        live = oauth2(fake, share.token_store("user-42"), refresh_token=first)
        async with BoxClient(live, base_url=box.url, rate_limit=None, clock=clock) as client:
            outcomes = [await outcome(terminate(client))]
            clock.advance(DUE)
            held.arm()
            call = asyncio.create_task(outcome(terminate(client)))
            await asyncio.wait_for(held.arrived.wait(), BOUND)
            server.command("FLUSHALL")  # the pair and the refresher's lock go
            held.release()
            outcomes.append(await call)
        async with (
            RedisShare(server.url) as later,
            BoxClient(oauth2(fake, later.token_store("user-42"), refresh_token=first), base_url=box.url) as following,
        ):
            following_outcome = await outcome(terminate(following))
    assert set(outcomes) <= ALLOWED_OUTCOMES, outcomes
    assert spent_refresh_tokens_sent(fake) == 0
    assert following_outcome == "ok"


@pytest.mark.parametrize("policy", ["volatile-lru", "noeviction"])
async def test_the_oauth2_lock_held_during_a_refresh_is_never_evicted(start_redis: StartRedis, policy: str) -> None:
    """A refresh's lock stays while a cache with TTLs fills Redis, so no second process can refresh meanwhile.

    (Before, the lock carried a TTL: untouched between renewals, it was the least recently used
    key ``volatile-lru`` could evict, a second process took it and sent the refresh token Box had
    just spent.) Under ``noeviction`` the fill ends in ``OOM`` with the lock in place.
    """
    server = start_redis(maxmemory_args("4mb", policy))
    lock = PAIR + ":lock"
    async with RedisShare(server.url) as holder, RedisShare(server.url, lock_wait=0.3) as other:
        async with holder.token_store("user-42").lock():
            filled = fill_memory(server, watched=(lock,), filler_ttl=3600, max_keys=3000)
            assert filled.evicted == frozenset(), filled
            if policy == "volatile-lru":
                assert filled.evicted_total > 100, filled  # Redis evicted for real: the fill's own keys
            with pytest.raises(BoxTimeoutError, match=r"another process has held the OAuth 2\.0 lock"):
                async with other.token_store("user-42").lock():
                    pass
        assert missing(server, [lock]) == {lock}  # released by its holder
