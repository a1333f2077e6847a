"""Pacing shared by the processes of one Box identity, with this process's own pacing while the share fails.

A share with a ``pacing`` facet (`SharedPacing`, e.g. ``RedisShare.pacing``) gives a `PacingState`
per Box identity: the schedule, the adaptive rate and the 429 cool-down of everyone sending as
that identity. `FallbackPacingState` puts it behind the rate limiter: while the share fails
(`SharedStateError`) it paces with an `InProcessPacingState`, says so once at WARNING, tries the
share again every `RETRY_SHARE` seconds, and says at INFO when it answers again. A slot is given
back to the state that gave it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar, runtime_checkable

import httpx

from .._auth import BoxAuth
from .._clock import Clock
from .._shared import SharedStateError
from ._pacing_state import InProcessPacingState, PacingState, RateReading, RateRecord, Refusal, Reservation

__all__ = ["RETRY_SHARE", "FallbackPacingState", "SharedPacing", "shared_pacing_state"]

logger = logging.getLogger("box_sessions")

T = TypeVar("T")

#: Seconds this process paces on its own after the share failed, before it tries the share again.
RETRY_SHARE = 1.0


@runtime_checkable
class SharedPacing(Protocol):
    """The optional ``pacing`` facet of a `box_sessions.Shared`: one pacing state per Box identity.

    The state's methods raise `SharedStateError` when the share fails, and are bounded in time.
    """

    def state(self, key: str) -> PacingState:
        """The pacing state of the Box identity ``key`` (an opaque string; a share may hash it)."""
        ...


def shared_pacing_state(
    shared: object, auth: BoxAuth, token_url: httpx.URL, as_user: str | None, clock: Clock
) -> PacingState | None:
    """The pacing state ``shared`` keeps for the client's Box identity, behind a fallback; or ``None``.

    Box's limit belongs to the user the calls count against: the app's subject (token URL,
    client id, enterprise or user) and the ``As-User`` it acts as.

    Args:
        shared: The client's share, or ``None``. Its ``pacing`` facet is optional: a share
            without one leaves pacing to each process.
        auth: The client's auth method; one whose identity is not known (a developer token,
            OAuth 2.0) paces each process on its own.
        token_url: The client's token URL.
        as_user: The client's ``As-User``, or ``None``.
        clock: The client's clock, for this process's own pacing while the share fails.
    """
    pacing = getattr(shared, "pacing", None)
    identity = auth.shared_identity(token_url)
    if identity is None or not isinstance(pacing, SharedPacing):
        return None
    return FallbackPacingState(pacing.state(f"{identity} as-user:{as_user or ''}"), clock)


class FallbackPacingState:
    """A shared `PacingState`, replaced by this process's own while the share fails.

    Args:
        shared: The state shared with the other processes.
        clock: The client's clock.
    """

    def __init__(self, shared: PacingState, clock: Clock) -> None:
        self._shared = shared
        self._local = InProcessPacingState(clock)
        self._clock = clock
        self._retry_at: float | None = None  # set while the share is failing

    async def _either(self, call: Callable[[PacingState], Awaitable[T]]) -> tuple[T, bool]:
        """``call`` on the share, or on this process's state while the share fails; and whether it was the share."""
        if self._retry_at is None or self._clock.monotonic() >= self._retry_at:
            try:
                result = await call(self._shared)
            except SharedStateError as exc:
                self._failed(exc)
            else:
                self._answered()
                return result, True
        return await call(self._local), False

    def _failed(self, exc: SharedStateError) -> None:
        if self._retry_at is None:
            logger.warning(
                "The shared pacing state failed (%s); this process paces on its own until it answers again", exc
            )
        self._retry_at = self._clock.monotonic() + RETRY_SHARE

    def _answered(self) -> None:
        if self._retry_at is not None:
            self._retry_at = None
            logger.info("The shared pacing state answers again; processes pace together again")

    async def reserve(self, interval: float, *, burst: int, max_wait: float | None) -> Reservation | Refusal:
        answer, from_share = await self._either(lambda state: state.reserve(interval, burst=burst, max_wait=max_wait))
        if isinstance(answer, Refusal):
            return answer
        return Reservation(answer.wait, answer.epoch, (from_share, answer))

    async def give_back(self, reservation: Reservation) -> None:
        key = reservation.key
        if not (isinstance(key, tuple) and len(key) == 2 and isinstance(key[1], Reservation)):
            return  # not a slot of this state
        from_share, inner = key
        if not from_share:
            await self._local.give_back(inner)
            return
        try:
            await self._shared.give_back(inner)
        except SharedStateError as exc:
            self._failed(exc)  # the slot stays taken in the share until its time passes

    async def get_rate(self) -> RateReading:
        return (await self._either(lambda state: state.get_rate()))[0]

    async def set_rate(self, record: RateRecord, *, expected_epoch: int) -> bool:
        return (await self._either(lambda state: state.set_rate(record, expected_epoch=expected_epoch)))[0]

    async def count_accepted(self) -> None:
        await self._either(lambda state: state.count_accepted())

    async def hold_cooldown(self, seconds: float) -> None:
        await self._either(lambda state: state.hold_cooldown(seconds))

    async def cooldown_remaining(self) -> float:
        return (await self._either(lambda state: state.cooldown_remaining()))[0]

    @property
    def sharing(self) -> bool:
        """Whether the share answered last (``False`` while this process paces on its own)."""
        return self._retry_at is None

    def __repr__(self) -> str:
        return f"FallbackPacingState(shared={self._shared!r}, sharing={self.sharing})"
