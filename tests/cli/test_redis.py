"""``box-sessions terminate --redis URL`` (or ``BOX_REDIS_URL``): jobs of one Box app share its token and quota.

Run as real processes against FakeBox and a real redis-server on 127.0.0.1.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import redis.asyncio as aioredis

from box_sessions.testing import FakeBox

from ..support.cli_process import run
from ..support.redis_server import RedisServer


def ccg_env(fake: FakeBox, **extra: str) -> dict[str, str]:
    return {
        "BOX_CLIENT_ID": fake.client_id,
        "BOX_CLIENT_SECRET": fake.client_secret,
        "BOX_ENTERPRISE_ID": "42",
        **extra,
    }


@pytest.mark.redis
@pytest.mark.parametrize("where", ["option", "environment"])
async def test_two_jobs_through_redis_share_one_token_and_one_schedule(redis_server: RedisServer, where: str) -> None:
    """Two jobs given the same Redis (flag or BOX_REDIS_URL) make one token request and pace under one key."""
    fake = FakeBox()
    args = ["terminate", "--user-id", "1", "--user-id", "2"]
    option = ["--redis", redis_server.url] if where == "option" else []
    env = {"BOX_REDIS_URL": redis_server.url} if where == "environment" else {}
    async with fake.serve() as url:
        for _ in range(2):
            code, out, err = await run([*args, *option, "--base-url", url], env=ccg_env(fake, **env))
            assert code == 0, err
            assert "Terminated 2 of 2" in out
    async with aioredis.Redis.from_url(redis_server.url) as raw:
        pacing_keys = [key async for key in raw.scan_iter("box-sessions:pacing:*")]
    assert fake.token_requests == 1
    assert len(pacing_keys) == 1
    assert "shared" not in err  # no WARNING: Redis answered throughout


async def test_a_password_in_the_redis_option_is_refused() -> None:
    """--redis with a password exits 2 before anything is sent, pointing to BOX_REDIS_URL, and never echoes it."""
    fake = FakeBox()
    async with fake.serve() as url:
        code, out, err = await run(
            ["terminate", "--user-id", "1", "--redis", "redis://app:hunter2-pw@127.0.0.1:1/0", "--base-url", url],
            env=ccg_env(fake),
        )
    assert code == 2
    assert "BOX_REDIS_URL" in err
    assert "hunter2-pw" not in err + out
    assert fake.requests == []


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        pytest.param(["--redis", "http://127.0.0.1:6379"], {}, "--redis", id="option"),
        pytest.param([], {"BOX_REDIS_URL": "memcached://127.0.0.1"}, "BOX_REDIS_URL", id="environment"),
    ],
)
async def test_a_url_that_is_not_redis_is_a_usage_error(args: list[str], env: dict[str, str], named: str) -> None:
    """A Redis URL of another scheme exits 2 with one sentence naming where it came from."""
    fake = FakeBox()
    async with fake.serve() as url:
        code, _, err = await run(["terminate", "--user-id", "1", *args, "--base-url", url], env=ccg_env(fake, **env))
    assert code == 2
    assert err.startswith(f"box-sessions: {named}: url must be a redis://")
    assert fake.requests == []


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        pytest.param(["--redis", "redis://127.0.0.1:1/0"], {}, "--redis", id="option"),
        pytest.param([], {"BOX_REDIS_URL": "redis://127.0.0.1:1/0"}, "BOX_REDIS_URL", id="environment"),
    ],
)
async def test_without_the_redis_extra_the_hint_installs_it_in_a_way_that_works_today(
    tmp_path: Path, args: list[str], env: dict[str, str], named: str
) -> None:
    """Without redis-py, --redis exits 2 saying how to install the extra from a checkout, and its published name."""
    hidden = tmp_path / "no-redis" / "redis"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text('raise ImportError("redis is hidden by the test")\n')
    fake = FakeBox()
    code, out, err = await run(
        ["terminate", "--user-id", "1", *args, "--base-url", "http://127.0.0.1:9"],
        env=ccg_env(fake, PYTHONPATH=str(hidden.parent), **env),
    )
    assert code == 2
    assert err.startswith(f"box-sessions: {named} needs the redis extra: ")
    assert """from a checkout, pip install ".[redis]";""" in err
    assert """pip install "box-sessions[redis]" once the package is published""" in err
    assert len(err.splitlines()) == 1
    assert out == ""
