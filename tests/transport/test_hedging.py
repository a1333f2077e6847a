"""Hedging: a second copy of a stalled request, raced against the first; the loser is cancelled and its outcome read."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

from box_sessions._sending._hedge import Hedger


async def test_a_copy_that_failed_as_the_other_won_leaves_no_unread_exception() -> None:
    """Both copies end in one turn, one failing: the race returns the winner and reads the loser's exception.

    (An unread one is reported by asyncio as "Task exception was never retrieved" when the task is
    collected, as the suite once printed under two busy cores for a timed-out hedged copy.)
    """
    reported: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    go = asyncio.Event()

    async def failing() -> str:
        await go.wait()
        raise TimeoutError("the first copy timed out")

    async def winning() -> str:
        await go.wait()
        return "answer"

    for _ in range(20):  # which copy the race looks at first varies: meet both orders
        go.clear()
        race = asyncio.create_task(Hedger().race(failing, winning, 0.0, what="POST /x"))
        while not go.is_set():  # both copies are running once the race has started the second one
            await asyncio.sleep(0)
            if len(asyncio.all_tasks()) >= 4:  # this test, the race, and the two copies
                go.set()
        assert await race == "answer"
        del race
        gc.collect()
    await asyncio.sleep(0)
    assert [context["message"] for context in reported] == []


async def test_when_both_copies_fail_the_first_error_is_raised() -> None:
    """Every copy failing raises the first one's error."""

    async def first() -> str:
        raise ValueError("first")

    async def second() -> str:
        raise ValueError("second")

    with pytest.raises(ValueError, match="first"):
        await Hedger().race(first, second, 0.0, what="POST /x")
