"""The core's use of a share (`box_sessions.Shared`), against a share written to the protocol with failures on demand.

The protocol is public: any store can implement it. These tests drive the branches of the core's
algorithm that a healthy Redis rarely takes; the Redis tests prove the same against a real server.
"""

from __future__ import annotations

import logging

import attrs
import pytest

from box_sessions import BoxClient, CCGAuth, Shared, SharedStateError, SharedToken, SharedTokens
from box_sessions._auth import _sharing

from ..conftest import TOKEN_URL, USERS_URL, accepted, terminate, token_answer
from ..support.routes import Routes


@attrs.define
class MemoryLock:
    share: MemoryTokens
    key: str

    async def release(self) -> None:
        if "release" in self.share.failing:
            raise SharedStateError("release refused")
        self.share.locks.discard(self.key)


@attrs.define
class MemoryTokens:
    """Tokens in a dict; ``failing`` names the operations that raise `SharedStateError`."""

    stored: dict[str, SharedToken] = attrs.field(factory=dict)
    locks: set[str] = attrs.field(factory=set)
    failing: set[str] = attrs.field(factory=set)
    loads: int = 0
    on_load: dict[int, SharedToken] = attrs.field(factory=dict)  # the n-th load finds this stored

    async def load(self, key: str) -> SharedToken | None:
        self.loads += 1
        if self.loads in self.on_load:
            self.stored[key] = self.on_load[self.loads]
        if "load" in self.failing or f"load{self.loads}" in self.failing:
            raise SharedStateError("load refused")
        return self.stored.get(key)

    async def save(self, key: str, token: SharedToken, *, ttl: float) -> None:
        if "save" in self.failing:
            raise SharedStateError("save refused")
        self.stored[key] = token

    async def try_lock(self, key: str) -> MemoryLock | None:
        if key in self.locks:
            return None
        self.locks.add(key)
        return MemoryLock(self, key)


@attrs.define
class MemoryShare:
    tokens: SharedTokens
    pacing: None = None  # each process paces on its own


@pytest.fixture
def tokens() -> MemoryTokens:
    return MemoryTokens()


def test_memory_share_is_a_shared() -> None:
    """The test's share satisfies the public protocols."""
    assert isinstance(MemoryShare(MemoryTokens()), Shared)
    assert isinstance(MemoryTokens(), SharedTokens)


async def test_token_stored_while_waiting_for_the_lock_is_used(
    routes: Routes, tokens: MemoryTokens, ccg: CCGAuth
) -> None:
    """Holding the lock, the process reads again: a token the last holder stored is used, Box is not asked."""
    tokens.on_load[2] = SharedToken(access_token="tok-other", expires_at=4e9, refresh_at=4e9)
    token = routes.post(TOKEN_URL).mock(return_value=token_answer("tok-own"))
    api = routes.post(USERS_URL).mock(return_value=accepted())
    async with BoxClient(ccg, rate_limit=None, shared=MemoryShare(tokens), transport=routes.transport) as client:
        await terminate(client)
    assert token.call_count == 0
    assert api.calls.last.request.headers["authorization"] == "Bearer tok-other"
    assert tokens.locks == set()  # released


async def test_a_lock_never_freed_is_waited_for_only_so_long(
    routes: Routes, tokens: MemoryTokens, ccg: CCGAuth, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another holder that never stores a token is waited for LOCK_WAIT; then the process asks Box itself and shares."""
    monkeypatch.setattr(_sharing, "LOCK_WAIT", 0.2)
    # Looking again at every turn of the loop, not every 50 ms: how often it looks within its wait
    # then depends on no machine's load.
    monkeypatch.setattr(_sharing, "POLL_INTERVAL", 0.0)
    key = "https://api.box.com/oauth2/token cid enterprise:42"
    tokens.locks.add(key)
    token = routes.post(TOKEN_URL).mock(return_value=token_answer("tok-own"))
    routes.post(USERS_URL).mock(return_value=accepted())
    async with BoxClient(ccg, rate_limit=None, shared=MemoryShare(tokens), transport=routes.transport) as client:
        await terminate(client)
    assert token.call_count == 1
    assert tokens.stored[key].access_token == "tok-own"
    assert tokens.loads > 2  # it kept looking for the holder's token meanwhile


@pytest.mark.parametrize(
    ("failing", "loads"),
    [
        pytest.param({"save"}, 2, id="save"),
        pytest.param({"release"}, 2, id="release"),
        pytest.param({"load2"}, 2, id="load-under-the-lock"),
        pytest.param({"load"}, 1, id="every-load"),
    ],
)
async def test_a_failing_share_costs_no_second_token_request(
    routes: Routes,
    tokens: MemoryTokens,
    *,
    ccg: CCGAuth,
    caplog: pytest.LogCaptureFixture,
    failing: set[str],
    loads: int,
) -> None:
    """Whichever step of the share fails, the call gets one token from Box, and one WARNING says so."""
    tokens.failing = failing
    token = routes.post(TOKEN_URL).mock(return_value=token_answer("tok-own"))
    api = routes.post(USERS_URL).mock(return_value=accepted())
    async with BoxClient(ccg, rate_limit=None, shared=MemoryShare(tokens), transport=routes.transport) as client:
        await terminate(client)
    assert token.call_count == 1
    assert api.calls.last.request.headers["authorization"] == "Bearer tok-own"
    assert tokens.loads == loads
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "refused" in warnings[0]


async def test_developer_and_oauth2_tokens_are_not_put_in_the_share(routes: Routes, tokens: MemoryTokens) -> None:
    """Only CCG and JWT tokens go through BoxClient(shared=); a developer token stays in its process."""
    from box_sessions import DeveloperTokenAuth  # noqa: PLC0415 - only this test needs it

    routes.post(USERS_URL).mock(return_value=accepted())
    async with BoxClient(
        DeveloperTokenAuth("dev-token"), rate_limit=None, shared=MemoryShare(tokens), transport=routes.transport
    ) as client:
        await terminate(client)
    assert (tokens.loads, tokens.stored) == (0, {})
