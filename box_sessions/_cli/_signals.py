"""Ctrl-C and SIGTERM: stop sending, cancel the batches in flight, keep what is recorded, say so.

A job is stopped the same way by SIGINT (Ctrl-C) and by SIGTERM (``kill``, a container's stop,
a CI timeout): the task reading its results is cancelled, which cancels the batches in flight;
the journal holds every batch that completed, each committed whole, so the same command resumes.
Outside a job (while the inputs are read) SIGTERM raises `Interrupted`, as Ctrl-C raises
`KeyboardInterrupt`, so that the command ends through its own error handling there too.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Iterator
from types import FrameType
from typing import TypeVar

__all__ = ["Interrupted", "sigterm_raises", "until_signal"]

T = TypeVar("T")
_STOPPING = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """SIGTERM arrived outside a job: the command ends with status 128 + the signal's number.

    A `BaseException`, as `KeyboardInterrupt` is, so that no ``except Exception`` swallows it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_interrupted(signum: int, _frame: FrameType | None) -> None:
    raise Interrupted(signum)


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """While the block runs, SIGTERM raises `Interrupted` (the previous handler is restored after).

    Outside the main thread, where Python cannot set signal handlers, it changes nothing.
    """
    try:
        previous = signal.signal(signal.SIGTERM, _raise_interrupted)
    except ValueError:  # not the main thread: signals are not this thread's to handle
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


async def until_signal(job: Awaitable[T]) -> tuple[T | None, int | None]:
    """Run ``job``; on SIGINT or SIGTERM, cancel it and wait for it to end.

    Returns:
        ``(result, None)`` when ``job`` ended by itself; ``(None, signum)`` when a signal stopped it.

    Raises:
        Exception: whatever ``job`` raised.
        asyncio.CancelledError: the caller was cancelled (``job`` is cancelled first).
    """
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(job)
    received: list[int] = []

    def on_signal(signum: int) -> None:
        received.append(signum)
        task.cancel()

    installed = []
    try:
        for signum in _STOPPING:
            previous = signal.getsignal(signum)
            try:
                loop.add_signal_handler(signum, on_signal, signum)
            except (NotImplementedError, RuntimeError):  # Windows, or not the main thread: Ctrl-C still raises
                continue
            installed.append((signum, previous))
        await asyncio.wait({task})  # a cancelled task ends the wait; its CancelledError stays with it
    finally:
        for signum, previous in installed:
            loop.remove_signal_handler(signum)
            signal.signal(signum, signal.SIG_DFL if previous is None else previous)
        if not task.done():  # the caller was cancelled: so is the job, and it ends before we do
            task.cancel()
            await asyncio.wait({task})
    if task.cancelled() and received:
        return None, received[0]
    return task.result(), None
