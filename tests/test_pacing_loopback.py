"""Pacing against a real server on 127.0.0.1, in real time: a burst of refusals leaves no slot behind."""

from __future__ import annotations

import asyncio
import time

import box_sessions
from box_sessions.testing import FakeBox


async def test_after_a_burst_of_refused_calls_the_next_call_goes_at_once() -> None:
    """30 calls at 120 a minute with 1.2 s each: 3 are sent, 27 refused at once; half a second
    later a call is sent without waiting (a refused call used to keep its slot, forever pushing
    the schedule out)."""
    fake = FakeBox()
    policy = box_sessions.RetryPolicy(total_timeout=1.2, max_attempts=1)
    async with (
        fake.serve() as url,
        box_sessions.BoxClient(
            box_sessions.DeveloperTokenAuth(fake.developer_token),
            base_url=url,
            retry=policy,
            rate_limit=box_sessions.RateLimit(requests_per_minute=120),
        ) as client,
    ):
        manager = client.session_termination
        outcomes = await asyncio.gather(
            *(manager.terminate_users_sessions(user_ids=[str(i)]) for i in range(1, 31)), return_exceptions=True
        )
        refused = [o for o in outcomes if isinstance(o, box_sessions.BoxTimeoutError)]
        assert (len(outcomes) - len(refused), len(refused)) == (3, 27)
        await asyncio.sleep(0.5)  # one interval of quiet
        started = time.monotonic()
        await manager.terminate_users_sessions(user_ids=["31"])
        assert time.monotonic() - started < 0.4
    assert fake.terminated_count == 4
