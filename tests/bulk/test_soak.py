"""Soak: a bulk job against a faulty FakeBox on loopback, with tokens expiring every few seconds.

CI runs a bounded size; ``nox -s soak`` sets BOX_SESSIONS_SOAK_IDS=50000.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Callable

import pytest

from box_sessions import BoxClient, RateLimit, RetryPolicy, TerminationReport
from box_sessions.testing import FakeBox, LoopbackServer

from ..conftest import fake_ccg, server_tasks, until, wait_for_no_connections

pytestmark = pytest.mark.soak

SOAK_IDS = int(os.environ.get("BOX_SESSIONS_SOAK_IDS", "10000"))
BATCH = 20  # many requests per id: the bounded run still meets every kind of fault
TOKEN_LIFETIME = 2.0  # refreshed at half-life: about one token request a second


def inputs(n: int) -> dict[str, list[str]]:
    users, logins = int(n * 0.8), int(n * 0.15)
    return {
        "user_ids": [str(10_000_000 + i) for i in range(users)],
        "user_logins": [f"user{i}@example.com" for i in range(logins)],
        "group_ids": [str(500_000 + i) for i in range(n - users - logins)],
    }


def faulty_box(seed: int) -> FakeBox:
    return FakeBox(
        rate_limit=12_000,
        burst=20,
        integer_retry_after=False,
        latency=0.005,
        jitter=0.004,
        error_rate=0.05,
        stall_rate=0.02,
        stall_seconds=2.0,
        drop_rate=0.01,
        token_lifetime=TOKEN_LIFETIME,
        record_requests=False,
        seed=seed,
    )


def client_for(fake: FakeBox, url: str) -> BoxClient:
    retry = RetryPolicy(initial_backoff=0.05, max_backoff=0.5, total_timeout=60)
    # 1 s per attempt: ample for an answer of 5 ms on a machine whose cores are busy, short of a 2 s stall.
    return BoxClient(
        fake_ccg(fake), base_url=url, timeout=1.0, retry=retry, rate_limit=RateLimit(requests_per_minute=12_000)
    )


async def run_job(client: BoxClient, given: dict[str, list[str]]) -> TerminationReport:
    return await client.session_termination.terminate(
        user_ids=given["user_ids"], user_logins=given["user_logins"], group_ids=given["group_ids"], batch_size=BATCH
    )


def left_nothing_running(before: set[asyncio.Task[object]], server: LoopbackServer) -> Callable[[], bool]:
    """Whether every task running now, but the server's own, ran already at ``before``: the client left none."""
    return lambda: asyncio.all_tasks() - server_tasks(server) == before


def assert_each_input_once(report: TerminationReport, given: dict[str, list[str]]) -> None:
    for field, values in given.items():
        reported = report.terminated[field] + [str(f.value) for f in report.failed if f.field == field]
        assert len(reported) == len(values), field  # none twice
        assert set(reported) == set(values), field  # none lost


async def test_soak_faults_rate_limit_and_expiring_tokens() -> None:
    """Every id once in the report and none lost; no task or connection left; one token per refresh."""
    given = inputs(SOAK_IDS)
    fake = faulty_box(seed=11)
    before = asyncio.all_tasks()
    async with LoopbackServer(fake.handle) as server:
        async with client_for(fake, server.url) as client:
            report = await run_job(client, given)
        await wait_for_no_connections(server)
    assert_each_input_once(report, given)
    assert report.ok, str(report)
    served = fake.stats()["distinct_terminated"]
    assert served == {field: len(values) for field, values in given.items()}  # what Box saw matches the report
    assert fake.faults["error"] > 0
    assert fake.faults["drop"] > 0
    assert fake.faults["stall"] > 0
    # Single flight under load: about one token request per half-life, not one per waiting request.
    expected = report.elapsed / (TOKEN_LIFETIME / 2)
    assert fake.token_requests <= expected + 3, (fake.token_requests, report.elapsed)
    assert fake.token_requests >= report.elapsed / TOKEN_LIFETIME
    assert asyncio.all_tasks() == before


async def test_soak_cancelled_at_random_moments() -> None:
    """Cancelled at 20 random moments: nothing left running, no connection open; finished runs account for all."""
    rng = random.Random(5)
    given = inputs(min(SOAK_IDS, 2000))
    fake = faulty_box(seed=12)
    cancelled = finished = 0
    async with LoopbackServer(fake.handle) as server:
        for _ in range(20):
            before = asyncio.all_tasks()
            async with client_for(fake, server.url) as client:
                job = asyncio.create_task(run_job(client, given))
                await asyncio.sleep(rng.uniform(0.0, 0.6))  # the point: a moment to cancel at, at random
                job.cancel()
                try:
                    report = await job
                except asyncio.CancelledError:
                    cancelled += 1
                else:
                    finished += 1
                    assert_each_input_once(report, given)
            # Closing lets a token request whose caller was cancelled end (BoxAuth.drain). Connections
            # accepted just before the cancel register with the server on their first step.
            await until(left_nothing_running(before, server), turns=10)
            await wait_for_no_connections(server)
    assert cancelled >= 10  # most cancellations land mid-job
    assert cancelled + finished == 20
