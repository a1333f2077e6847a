"""The FastAPI example under ``uvicorn --workers 4`` with ``BOX_REDIS_URL``: four processes, one token, one rate.

uvicorn runs as a real process on 127.0.0.1 against FakeBox (served by the test, at Box's
documented 1,000 requests a minute) and a real redis-server.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path

import httpx
import pytest

from box_sessions.testing import FakeBox

from ..support.cli_process import environment
from ..support.redis_server import RedisServer, free_port

pytest.importorskip("uvicorn")
pytest.importorskip("fastapi")

pytestmark = pytest.mark.redis

WORKERS = 4
#: Generous bound for uvicorn's workers to start, and for the requests to end.
BOUND = 90.0
ROOT = Path(__file__).resolve().parents[2]
#: The caller key the example accepts here (conftest's SECRETS knows the shape).
KEY = "terminate-key-5e4d3c2b1a"


async def wait_for_workers(process: asyncio.subprocess.Process) -> None:
    """Read uvicorn's log until every worker has finished its startup (the lifespan ran)."""
    assert process.stderr is not None
    started = 0
    while started < WORKERS:
        line = await process.stderr.readline()
        assert line, "uvicorn ended before its workers started"
        started += b"Application startup complete" in line


async def test_four_workers_share_one_token_and_one_rate(redis_server: RedisServer) -> None:
    """Forty requests spread over four workers: one token request, no 429, every id terminated once."""
    fake = FakeBox(rate_limit=1000.0)
    port = free_port()
    async with fake.serve() as box_url:
        env = environment(
            {
                "BOX_CLIENT_ID": fake.client_id,
                "BOX_CLIENT_SECRET": fake.client_secret,
                "BOX_ENTERPRISE_ID": "42",
                "BOX_BASE_URL": box_url,
                "BOX_REDIS_URL": redis_server.url,
                "TERMINATE_API_KEYS": KEY,
            }
        )
        args = ["-m", "uvicorn", "examples.fastapi_app:app", "--host", "127.0.0.1", "--port", str(port)]
        process = await asyncio.create_subprocess_exec(
            sys.executable, *args, "--workers", str(WORKERS), cwd=ROOT, env=env, stderr=asyncio.subprocess.PIPE
        )
        try:
            await asyncio.wait_for(wait_for_workers(process), BOUND)
            headers = {"Authorization": f"Bearer {KEY}"}
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=BOUND, headers=headers) as http:
                answers = await asyncio.gather(
                    *(
                        http.post("/terminate", json={"user_ids": [str(n * 10 + i) for i in range(10)]})
                        for n in range(40)
                    )
                )
        finally:
            process.terminate()
            with contextlib.suppress(ProcessLookupError):
                await asyncio.wait_for(process.communicate(), BOUND)
    assert [answer.status_code for answer in answers] == [200] * 40
    assert all(answer.json()["ok"] for answer in answers)
    assert sorted(fake.terminated["user_ids"], key=int) == [str(i) for i in range(400)]
    assert fake.token_requests == 1
    assert fake.status_counts[429] == 0
