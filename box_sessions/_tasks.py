"""Task hygiene: clean-up that survives repeated cancellation, wall-clock bounds, and the loop an object belongs to.

Starlette's and anyio's cancel scopes cancel a task again at every ``await`` until the scope is
left, and a caller may call ``task.cancel()`` twice: clean-up written as a plain ``await`` in a
``finally`` is then cut short and leaves tasks and connections behind. `finish` shields the clean-up
and re-raises the cancellation only once it is done: a `asyncio.CancelledError` is delayed, never
swallowed.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Iterable
from typing import Any, TypeVar

__all__ = ["LoopBinding", "cancel_and_wait", "cancelled_once", "finish", "time_limit"]

T = TypeVar("T")


async def finish(aw: Awaitable[T]) -> T:
    """Await ``aw`` to its end even if this task is cancelled meanwhile; then let the cancellation through.

    Raises:
        asyncio.CancelledError: this task was cancelled while waiting (after ``aw`` finished), or
            ``aw`` itself was cancelled.
    """
    task = asyncio.ensure_future(aw)
    cancelled: asyncio.CancelledError | None = None
    while True:
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError as exc:
            if task.done():
                raise  # the clean-up itself was cancelled: nothing left to wait for
            cancelled = exc
        else:
            break
    if cancelled is not None:
        raise cancelled
    return result


async def cancel_and_wait(tasks: Iterable[asyncio.Future[Any]]) -> None:
    """Cancel ``tasks`` and wait until every one has ended, whatever cancels this task meanwhile."""
    pending = [task for task in tasks if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        await finish(asyncio.wait(pending))


async def cancelled_once(aw: Awaitable[T]) -> T:
    """Await ``aw`` in a task of its own, which a cancellation of this task cancels once, then waits for.

    httpcore closes a cancelled request's connection under a shield that a second ``task.cancel()``
    breaks, leaving the request open until the client closes. Here the request's task is cancelled
    once, however often (or under whatever cancel scope) its caller is: its clean-up runs to the end.

    Raises:
        asyncio.CancelledError: this task was cancelled (after ``aw``'s task ended).
    """
    task = asyncio.ensure_future(aw)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.cancel()
        await finish(asyncio.wait({task}))
        if not task.cancelled():
            task.exception()  # an outcome reached before the cancel is read: never "never retrieved"
        raise


class LoopBinding:
    """Remembers the event loop an object was first used in, and refuses any other."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None

    def check(self, what: str, advice: str) -> None:
        """Bind to the running loop on first use; afterwards raise `RuntimeError` in any other loop.

        Args:
            what: The object, for the message ("this BoxClient").
            advice: What to do instead, for the message.
        """
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError(
                f"{what} was first used in another event loop and cannot be used in this one "
                f"(its connections belong to that loop); {advice}"
            )


if sys.version_info >= (3, 11):

    def time_limit(seconds: float | None) -> contextlib.AbstractAsyncContextManager[object]:
        """Cancel the block after ``seconds`` of wall-clock time and raise `TimeoutError`; ``None``: no limit."""
        return asyncio.timeout(seconds)  # itself, not wrapped: every request enters two

else:  # pragma: no cover - Python 3.10 has no asyncio.timeout; anyio (httpx's own dependency) has the same
    import anyio

    @contextlib.asynccontextmanager
    async def time_limit(seconds: float | None) -> AsyncIterator[None]:
        """Cancel the block after ``seconds`` of wall-clock time and raise `TimeoutError`; ``None``: no limit."""
        with anyio.fail_after(seconds):
            yield
