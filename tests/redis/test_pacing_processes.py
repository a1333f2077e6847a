"""Real processes pacing together through a real redis-server against FakeBox's rate limit on 127.0.0.1.

Four processes each terminate a quarter of a job, started together. FakeBox allows `RATE`
requests a minute (Box's documented limit, scaled up so the test is short) with a bucket of one
second's worth; each client's `RateLimit` is that rate. Alone, four processes send four times
the rate and FakeBox refuses the excess; through Redis they send it once.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from box_sessions.testing import FakeBox

from ..support.redis_server import RedisServer
from ..support.script_processes import Start, script_processes

pytestmark = pytest.mark.redis

#: Requests a minute FakeBox allows, and each client's pacing.
RATE = 1200.0
#: Processes, ids each, ids a request.
PROCESSES, IDS, BATCH = 4, 250, 10
#: Generous bound for a process to start, or to finish its job.
BOUND = 90.0

PROCESS_SCRIPT = """
import asyncio, json, sys

import box_sessions
from box_sessions.redis import RedisShare


async def main() -> None:
    config = json.loads(sys.argv[1])
    share = RedisShare(config["redis"], timeout=1.0) if config["redis"] else None
    auth = box_sessions.CCGAuth(
        client_id=config["client_id"], client_secret=config["client_secret"], enterprise_id="42"
    )
    client = box_sessions.BoxClient(
        auth,
        base_url=config["base_url"],
        rate_limit=box_sessions.RateLimit(requests_per_minute=config["rate"]),
        shared=share,
    )
    ids = [str(i) for i in range(config["first"], config["first"] + config["count"])]
    print("ready", flush=True)
    sys.stdin.readline()  # the go signal: every process starts its job at the same moment
    try:
        async with client:
            report = await client.session_termination.terminate(user_ids=ids, batch_size=config["batch"])
    finally:
        if share is not None:
            await share.aclose()
    print(json.dumps({
        "terminated": report.terminated["user_ids"],
        "failed": [f.value for f in report.failed],
        "requests": report.requests,
        "rate_limited": report.rate_limited,
    }), flush=True)


asyncio.run(main())
"""


@pytest.fixture
async def start_process(tmp_path: Path) -> AsyncIterator[Start]:
    """Start a process running `PROCESS_SCRIPT` and wait (bounded) until it is ready; all are reaped at the end."""
    script = tmp_path / "pacing_process.py"
    script.write_text(PROCESS_SCRIPT, encoding="utf-8")
    async with script_processes(script, bound=BOUND) as start:
        yield start


async def run_job(
    fake: FakeBox, url: str, redis: str | None, start: Start, *, during: Callable[[], Awaitable[None]] | None = None
) -> list[tuple[dict[str, Any], str]]:
    """Four processes each terminating a quarter of the ids, started together: each one's result and stderr."""
    config = {"base_url": url, "redis": redis, "rate": RATE, "count": IDS, "batch": BATCH}
    credentials = {"client_id": fake.client_id, "client_secret": fake.client_secret}
    processes = [await start(**config, **credentials, first=n * IDS) for n in range(PROCESSES)]
    for process in processes:
        assert process.stdin is not None
        process.stdin.write(b"go\n")
        await process.stdin.drain()
    if during is not None:
        await during()
    results = []
    for process in processes:
        out, err = await asyncio.wait_for(process.communicate(), BOUND)
        lines = out.decode().splitlines()
        assert lines, f"the process printed nothing: {err.decode(errors='replace')[-2000:]}"
        results.append((json.loads(lines[-1]), err.decode(errors="replace")))
    return results


def assert_every_id_terminated_once(fake: FakeBox, results: list[tuple[dict[str, Any], str]]) -> None:
    expected = sorted(str(i) for i in range(PROCESSES * IDS))
    assert sorted(i for result, _ in results for i in result["terminated"]) == expected
    assert [i for result, _ in results for i in result["failed"]] == []
    assert sorted(fake.terminated["user_ids"]) == expected  # each accepted once: nothing sent twice


async def test_four_processes_pacing_through_redis_stay_under_the_limit(
    redis_server: RedisServer, start_process: Start
) -> None:
    """Through Redis, four processes send at the app's one rate: no 429, one token request, every id terminated once."""
    fake = FakeBox(rate_limit=RATE)
    async with fake.serve() as url:
        results = await run_job(fake, url, redis_server.url, start_process)
    assert_every_id_terminated_once(fake, results)
    assert fake.status_counts[429] == 0
    assert fake.token_requests == 1


async def test_four_processes_pacing_alone_exceed_the_limit(start_process: Start) -> None:
    """Without a share, four processes each at the app's rate send four times it: FakeBox refuses many requests."""
    fake = FakeBox(rate_limit=RATE)
    async with fake.serve() as url:
        results = await run_job(fake, url, None, start_process)
    assert_every_id_terminated_once(fake, results)  # retried after their 429s: nothing lost
    # Each starts at the full rate: four times it together, more than FakeBox's bucket of 20 holds
    # within the first second. (Each then slows down on its own after its first 429.)
    assert fake.status_counts[429] > 0
    assert sum(result["rate_limited"] for result, _ in results) == fake.status_counts[429]
    assert fake.token_requests == PROCESSES


async def test_redis_killed_mid_job_leaves_every_id_accounted_for(
    redis_server: RedisServer, start_process: Start
) -> None:
    """Redis killed a second into the job: each process warns once, paces on its own, and terminates all its ids."""
    fake = FakeBox(rate_limit=RATE)

    async def kill_redis() -> None:
        await asyncio.sleep(1.0)  # the job takes about 5 s at the shared rate
        redis_server.kill()

    async with fake.serve() as url:
        results = await run_job(fake, url, redis_server.url, start_process, during=kill_redis)
    assert_every_id_terminated_once(fake, results)
    for _, err in results:
        assert err.count("The share failed") == 1, err[-2000:]
