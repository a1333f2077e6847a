"""Real processes sharing tokens: one CCG token and one OAuth 2.0 refresh for six processes, and a holder killed.

Each process runs a small script (`PROCESS_SCRIPT`) against FakeBox served by the test on
127.0.0.1 and a real redis-server; they start their call together when the test says "go".
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from box_sessions import JSONFileTokenStore, OAuth2Tokens
from box_sessions.redis import RedisShare
from box_sessions.testing import FakeBox, LoopbackServer, Reply, Request

from ..support.redis_server import RedisServer
from ..support.script_processes import Start, script_processes

#: Generous bound for a process to start, or to finish its call.
BOUND = 60.0
#: The lock time of the processes in the test where the lock holder is killed.
LOCK_TTL = 1.5

PROCESS_SCRIPT = """
import asyncio, json, sys, time

import box_sessions
from box_sessions.redis import RedisShare


async def main() -> None:
    config = json.loads(sys.argv[1])
    share = RedisShare(config["redis"], lock_ttl=config["lock_ttl"]) if config["redis"] else None
    credentials = {"client_id": config["client_id"], "client_secret": config["client_secret"]}
    if config["auth"] == "ccg":
        auth = box_sessions.CCGAuth(**credentials, enterprise_id="42")
    elif config["auth"] == "oauth2-redis":
        auth = box_sessions.OAuth2Auth(**credentials, token_store=share.token_store("user-42"))
    else:
        auth = box_sessions.OAuth2Auth(**credentials, token_store=box_sessions.JSONFileTokenStore(config["path"]))
    client = box_sessions.BoxClient(auth, base_url=config["base_url"], rate_limit=None, shared=share)
    print("ready", flush=True)
    sys.stdin.readline()  # the go signal: every process calls at the same moment
    started = time.monotonic()
    try:
        async with client:
            await client.session_termination.terminate_users_sessions([config["user"]])
    except box_sessions.BoxError as exc:
        print(json.dumps({"error": type(exc).__name__, "message": str(exc)}), flush=True)
    else:
        print(json.dumps({"elapsed": time.monotonic() - started}), flush=True)
    finally:
        if share is not None:
            await share.aclose()


asyncio.run(main())
"""


@pytest.fixture
async def start_process(tmp_path: Path) -> AsyncIterator[Start]:
    """Start a process running `PROCESS_SCRIPT` and wait (bounded) until it is ready; all are reaped at the end."""
    script = tmp_path / "box_process.py"
    script.write_text(PROCESS_SCRIPT, encoding="utf-8")
    async with script_processes(
        script, bound=BOUND, defaults=lambda n: {"lock_ttl": 10.0, "user": str(n + 1)}
    ) as start:
        yield start


async def go(*processes: asyncio.subprocess.Process) -> None:
    for process in processes:
        assert process.stdin is not None
        process.stdin.write(b"go\n")
        await process.stdin.drain()


async def outcome(process: asyncio.subprocess.Process) -> dict[str, Any]:
    """What the process printed last (its result), waiting for it to end (bounded)."""
    out, err = await asyncio.wait_for(process.communicate(), BOUND)
    lines = out.decode().splitlines()
    assert lines, f"the process printed nothing: {err.decode(errors='replace')[-2000:]}"
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def credentials(fake: FakeBox) -> dict[str, str]:
    return {"client_id": fake.client_id, "client_secret": fake.client_secret}


@pytest.mark.redis
async def test_six_processes_needing_a_ccg_token_make_one_token_request(
    redis_server: RedisServer, start_process: Start
) -> None:
    """Six processes needing a CCG token at the same moment make exactly one token request."""
    fake = FakeBox()
    async with fake.serve() as url:
        processes = [
            await start_process(auth="ccg", base_url=url, redis=redis_server.url, **credentials(fake)) for _ in range(6)
        ]
        await go(*processes)
        results = [await outcome(p) for p in processes]
    assert all("elapsed" in r for r in results), results
    assert fake.token_requests == 1
    assert fake.status_counts[202] == 6
    assert len({r.token for r in fake.api_requests()}) == 1


@pytest.mark.redis
async def test_six_processes_needing_an_oauth2_refresh_make_one_refresh(
    redis_server: RedisServer, start_process: Start
) -> None:
    """Six processes needing an OAuth 2.0 refresh at the same moment make exactly one; no refresh token is reused."""
    fake = FakeBox()
    first_refresh = fake.issue_refresh_token()
    async with RedisShare(redis_server.url) as share:
        await share.token_store("user-42").save(OAuth2Tokens(refresh_token=first_refresh))
        async with fake.serve() as url:
            processes = [
                await start_process(auth="oauth2-redis", base_url=url, redis=redis_server.url, **credentials(fake))
                for _ in range(6)
            ]
            await go(*processes)
            results = [await outcome(p) for p in processes]
        saved = await share.token_store("user-42").load()
    assert all("elapsed" in r for r in results), results
    assert (fake.token_requests, fake.spent_refresh_tokens) == (1, 1)
    assert fake.status_counts[400] == 0  # no invalid_grant: no refresh token was sent twice
    assert fake.status_counts[202] == 6
    assert saved is not None
    assert saved.refresh_token != first_refresh


async def test_six_processes_sharing_a_token_file_make_one_refresh(tmp_path: Path, start_process: Start) -> None:
    """Six processes sharing a JSONFileTokenStore refresh once between them: the file lock holds across the refresh."""
    fake = FakeBox()
    path = tmp_path / "tokens.json"
    await JSONFileTokenStore(path).save(OAuth2Tokens(refresh_token=fake.issue_refresh_token()))
    async with fake.serve() as url:
        processes = [
            await start_process(auth="oauth2-file", base_url=url, redis=None, path=str(path), **credentials(fake))
            for _ in range(6)
        ]
        await go(*processes)
        results = [await outcome(p) for p in processes]
    assert all("elapsed" in r for r in results), results
    assert (fake.token_requests, fake.spent_refresh_tokens, fake.status_counts[400]) == (1, 1, 0)
    assert fake.status_counts[202] == 6


@pytest.mark.redis
async def test_refresh_lock_holder_killed_mid_refresh(redis_server: RedisServer, start_process: Start) -> None:
    """The lock holder, SIGKILLed mid-refresh, held the lock while alive; the next process goes on after its TTL."""
    fake = FakeBox()
    first_refresh = fake.issue_refresh_token()
    loop = asyncio.get_running_loop()
    arrivals: list[float] = []
    first_arrived = asyncio.Event()

    async def slow_first_refresh(request: Request) -> Reply:
        if request.path.startswith("/oauth2/token"):
            arrivals.append(loop.time())
            if len(arrivals) == 1:
                first_arrived.set()
                await asyncio.sleep(3 * BOUND)  # slow: Box has not handled it when its sender dies
        return await fake.handle(request)

    async with RedisShare(redis_server.url) as share, LoopbackServer(slow_first_refresh) as server:
        await share.token_store("user-42").save(OAuth2Tokens(refresh_token=first_refresh))
        config = {"auth": "oauth2-redis", "base_url": server.url, "redis": redis_server.url, "lock_ttl": LOCK_TTL}
        holder = await start_process(**config, **credentials(fake))
        await go(holder)
        await asyncio.wait_for(first_arrived.wait(), BOUND)
        waiter = await start_process(**config, **credentials(fake))
        await go(waiter)
        await asyncio.sleep(2 * LOCK_TTL)  # the holder renews its lock while it lives: the waiter waits
        assert len(arrivals) == 1
        assert waiter.returncode is None
        holder.kill()  # SIGKILL, in the middle of the refresh
        killed_at = loop.time()
        await asyncio.wait_for(holder.wait(), BOUND)
        result = await outcome(waiter)
        saved = await share.token_store("user-42").load()
    assert "elapsed" in result, result
    assert len(arrivals) == 2
    # The lock outlived its holder by at most its TTL (renewed every third of it), not much less.
    assert LOCK_TTL / 3 < arrivals[1] - killed_at < LOCK_TTL + 2.0
    assert (fake.spent_refresh_tokens, fake.status_counts[400]) == (1, 0)  # never a spent refresh token
    assert saved is not None
    assert saved.refresh_token != first_refresh
    assert saved.access_token == fake.api_requests()[0].token
