"""A shared `PacingState`, replaced by this process's own while the share fails.

While the share fails (`SharedStateError`) the client paces with an `InMemoryPacingState`, says
so once (`ShareHealth`), tries the share again every `RETRY_SHARE` seconds, and says when it
answers again. A slot is given back to the state that gave it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from .._clock import Clock
from .._shared import PacingAnswer, PacingReading, PacingState, Refusal, Reservation, SharedStateError, ShareHealth
from ._memory import InMemoryPacingState

__all__ = ["FallbackPacingState"]

T = TypeVar("T")


class FallbackPacingState:
    """A `PacingState` shared with other processes, and this process's own while the share fails.

    Args:
        shared: The state shared with the other processes.
        clock: The client's clock.
        health: The client's view of its share (its token cache tells the same one).
    """

    def __init__(self, shared: PacingState, clock: Clock, health: ShareHealth | None = None) -> None:
        self._shared = shared
        self._local = InMemoryPacingState(clock)
        self.health = health or ShareHealth(clock)

    async def _either(self, call: Callable[[PacingState], Awaitable[T]]) -> tuple[T, bool]:
        """``call`` on the share, or on this process's state while the share fails; and whether it was the share."""
        if self.health.may_try():
            try:
                result = await call(self._shared)
            except SharedStateError as exc:
                self.health.failed(exc)
            else:
                self.health.answered(wrote=not isinstance(result, Refusal))  # a refusal wrote nothing
                return result, True
        return await call(self._local), False

    async def reserve(
        self,
        *,
        interval: float,
        burst: int,
        epoch: int | None,
        max_wait: float | None,
        max_cooldown: float | None,
    ) -> Reservation | Refusal:
        answer, from_share = await self._either(
            lambda state: state.reserve(
                interval=interval, burst=burst, epoch=epoch, max_wait=max_wait, max_cooldown=max_cooldown
            )
        )
        if isinstance(answer, Refusal):
            return answer
        return Reservation(wait=answer.wait, reading=answer.reading, key=(from_share, answer))

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
            self.health.failed(exc)  # the slot stays taken in the share until its time passes

    async def record(self, answer: PacingAnswer) -> PacingReading:
        return (await self._either(lambda state: state.record(answer)))[0]

    def __repr__(self) -> str:
        return f"FallbackPacingState(shared={self._shared!r}, sharing={not self.health.failing})"
