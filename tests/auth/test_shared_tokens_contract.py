"""The `SharedTokens` contract: the README's store and the Redis share through the same cases.

Time passes for real here (a token's time to live, a lock's), but only forward: each assertion
after a wait holds for any longer wait, so a busy machine cannot break it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import attrs
import pytest

from box_sessions import Shared, SharedToken, SharedTokens
from box_sessions.redis import RedisShare
from box_sessions.testing import FakeBox

from ..conftest import fake_ccg
from ..support.readme import readme_store
from ..support.redis_server import RedisServer

#: Seconds a lock outlives a holder that died, in these tests.
LOCK_TTL = 0.3


@attrs.frozen
class Tokens:
    """One implementation: the same share as two processes see it."""

    one: SharedTokens
    two: SharedTokens
    shares: tuple[Shared, Shared]


@pytest.fixture(params=["readme", "redis"])
async def tokens(request: pytest.FixtureRequest) -> AsyncIterator[Tokens]:
    """The README's in-process store, and a real redis-server seen by two `RedisShare`s."""
    if request.param == "readme":
        share = readme_store().MemoryShare(lock_ttl=LOCK_TTL)
        yield Tokens(share.tokens, share.tokens, (share, share))
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    async with RedisShare(server.url, lock_ttl=LOCK_TTL) as one, RedisShare(server.url, lock_ttl=LOCK_TTL) as two:
        yield Tokens(one.tokens, two.tokens, (one, two))


def token(name: str = "acc3ss-1") -> SharedToken:
    return SharedToken(access_token=name, expires_at=2_000_000_000.0, refresh_at=1_999_999_000.0)


async def test_nothing_is_loaded_before_something_is_saved(tokens: Tokens) -> None:
    """An identity nobody saved a token for loads as None."""
    assert await tokens.one.load("app") is None


async def test_a_token_saved_by_one_process_is_loaded_by_another(tokens: Tokens) -> None:
    """The token, its expiry and its refresh time come back as saved."""
    await tokens.one.save("app", token(), ttl=60)
    assert await tokens.two.load("app") == token()


async def test_identities_keep_tokens_and_locks_of_their_own(tokens: Tokens) -> None:
    """Another identity sees neither the first one's token nor its lock."""
    await tokens.one.save("app-a", token(), ttl=60)
    assert await tokens.one.try_lock("app-a") is not None
    assert await tokens.two.load("app-b") is None
    assert await tokens.two.try_lock("app-b") is not None


async def test_a_token_is_gone_when_its_time_to_live_has_passed(tokens: Tokens) -> None:
    """A token saved for 0.2 s is not loaded after it."""
    await tokens.one.save("app", token(), ttl=0.2)
    await asyncio.sleep(0.3)  # the point: the store's own clock passes the time to live
    assert await tokens.two.load("app") is None


async def test_a_lock_is_had_by_one_process_at_a_time(tokens: Tokens) -> None:
    """While one holds the lock another cannot take it; once released it can."""
    lock = await tokens.one.try_lock("app")
    assert lock is not None
    assert await tokens.two.try_lock("app") is None
    await lock.release()
    assert await tokens.two.try_lock("app") is not None


async def test_a_lock_whose_holder_died_frees_itself(tokens: Tokens) -> None:
    """A lock never released (its holder died) can be taken again after its time."""
    assert await tokens.one.try_lock("app") is not None
    await asyncio.sleep(LOCK_TTL + 0.1)  # the point: the store's own clock passes the lock's time
    assert await tokens.two.try_lock("app") is not None


async def test_a_late_release_does_not_free_the_next_holders_lock(tokens: Tokens) -> None:
    """A holder whose lock expired, releasing it late, leaves the lock the next holder took."""
    late = await tokens.one.try_lock("app")
    assert late is not None
    await asyncio.sleep(LOCK_TTL + 0.1)  # the point: the store's own clock passes the lock's time
    assert await tokens.two.try_lock("app") is not None
    await late.release()
    assert await tokens.one.try_lock("app") is None


async def test_clients_sharing_it_make_one_token_request(tokens: Tokens) -> None:
    """Two clients given the share, as two processes, need one CCG token between them."""
    fake = FakeBox()
    auth = fake_ccg(fake)
    first, second = tokens.shares
    async with fake.client(auth, shared=first) as one, fake.client(attrs.evolve(auth), shared=second) as two:
        await one.session_termination.terminate_users_sessions(user_ids=["1"])
        await two.session_termination.terminate_users_sessions(user_ids=["2"])
    assert fake.token_requests == 1
    assert fake.terminated_count == 2
