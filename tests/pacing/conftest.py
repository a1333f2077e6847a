"""The pacing contract's fixture: every `PacingState` implementation, behind one small adapter.

Each implementation is seen by two clients (two handles on one state: two processes for Redis), a
way to let time pass, and a way to read a slot's own time from its reservation, so that spacing is
asserted exactly, whatever the machine's load: a slot's time is fixed by the state when it is
reserved, not by when the test reads it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import attrs
import pytest

from box_sessions import InMemoryPacingState, PacingState, Reservation
from box_sessions.redis import RedisShare
from box_sessions.testing import FakeClock

from ..support.readme import readme_store
from ..support.redis_server import RedisServer


@attrs.frozen
class Contract:
    """One implementation under the contract.

    Attributes:
        one: The state as the first client sees it.
        two: The same state as a second client (another process) sees it.
        advance: Lets at least this many seconds pass for the state.
        slot_time: The state's own time of a reserved slot, in seconds.
        name: The implementation, for messages.
    """

    one: PacingState
    two: PacingState
    advance: Callable[[float], Awaitable[None]]
    slot_time: Callable[[Reservation], float]
    name: str


def _memory_slot_time(reservation: Reservation) -> float:
    send_at: float = getattr(reservation.key, "send_at")  # noqa: B009 - the in-memory state's own note of a slot
    return send_at


def _redis_slot_time(reservation: Reservation) -> float:
    assert isinstance(reservation.key, tuple)
    return int(reservation.key[1]) / 1_000_000


@pytest.fixture(params=["memory", "readme", "redis"])
async def contract(request: pytest.FixtureRequest) -> AsyncIterator[Contract]:
    """Each implementation of `PacingState`: this process's memory, the README's store, and a real redis-server."""
    if request.param == "readme":
        # The README's store paces on the real clock: real time passes (the assertions after it
        # hold for any longer wait, so a busy machine cannot break them).
        pacing = readme_store().MemoryShare().pacing
        yield Contract(pacing.state("app"), pacing.state("app"), asyncio.sleep, _memory_slot_time, "readme")
        return
    if request.param == "memory":
        clock = FakeClock()
        state = InMemoryPacingState(clock)

        async def advance_fake(seconds: float) -> None:
            clock.advance(seconds)

        yield Contract(state, state, advance_fake, _memory_slot_time, "memory")
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    async with RedisShare(server.url) as first, RedisShare(server.url) as second:
        # Redis's own clock cannot be moved: real time passes (the assertions after it hold for
        # any longer wait, so a busy machine cannot break them).
        yield Contract(first.pacing.state("app"), second.pacing.state("app"), asyncio.sleep, _redis_slot_time, "redis")
