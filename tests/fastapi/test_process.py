"""The FastAPI example as uvicorn runs it: a real process on 127.0.0.1, against FakeBox served by the test."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from box_sessions.testing import FakeBox

from ..support.cli_process import environment

pytest.importorskip("uvicorn")
pytest.importorskip("fastapi")

ROOT = Path(__file__).resolve().parents[2]
#: The one caller key the example accepts here (conftest's SECRETS knows the shape).
KEY = "terminate-key-0a9b8c7d6e"
#: Generous bound for uvicorn to start or stop, and for a request to end.
BOUND = 60.0
#: uvicorn in an interpreter where ``import redis`` fails, as it does without the ``redis`` extra.
UVICORN_WITHOUT_REDIS = (
    "import runpy, sys; sys.modules['redis'] = None; sys.argv[0] = 'uvicorn'; "
    "runpy.run_module('uvicorn', run_name='__main__', alter_sys=True)"
)
NO_REDIS_EXTRA = (
    "RuntimeError: cannot start: BOX_REDIS_URL is set but the redis extra is not installed "
    '(pip install ".[redis]" in a checkout of box_sessions, "box-sessions[redis]" once it is published)'
)
NO_API_KEYS = (
    "RuntimeError: cannot start: set TERMINATE_API_KEYS to the callers' API keys, comma-separated "
    "(POST /terminate serves only requests with Authorization: Bearer <one of them>)"
)
#: uvicorn's line once it serves; with ``--port 0`` it names the port the system chose.
SERVING = re.compile(r"Uvicorn running on (http://127\.0\.0\.1:\d+)")


class Example:
    """The example under uvicorn: its URL once it serves, and what it wrote to stderr."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.url = ""
        self.stderr = ""

    async def read_until_serving(self) -> bool:
        """Read stderr until uvicorn serves (True) or the process ends (False)."""
        assert self.process.stderr is not None
        while line := (await self.process.stderr.readline()).decode(errors="replace"):
            self.stderr += line
            if match := SERVING.search(line):
                self.url = match.group(1)
                return True
        return False

    async def stop(self) -> str:
        """End the process (if it still runs) and return everything it wrote to stderr."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
        _, rest = await asyncio.wait_for(self.process.communicate(), BOUND)
        self.stderr += rest.decode(errors="replace")
        return self.stderr


@contextlib.asynccontextmanager
async def uvicorn_example(env: dict[str, str], *, without_redis: bool = False) -> AsyncIterator[Example]:
    """Start ``uvicorn examples.fastapi_app:app`` on a free port with ``env``; stopped when the block ends."""
    args = ["examples.fastapi_app:app", "--host", "127.0.0.1", "--port", "0"]
    prefix = ["-c", UVICORN_WITHOUT_REDIS] if without_redis else ["-m", "uvicorn"]
    # No BOX_* variable or caller key leaks in from outside: the test's ``env`` is the whole configuration.
    env = {**{name: value for name, value in environment().items() if name != "TERMINATE_API_KEYS"}, **env}
    process = await asyncio.create_subprocess_exec(
        sys.executable, *prefix, *args, cwd=ROOT, env=env, stderr=asyncio.subprocess.PIPE
    )
    example = Example(process)
    try:
        yield example
    finally:
        await example.stop()


def service_env(fake: FakeBox, base_url: str, keys: str | None = KEY) -> dict[str, str]:
    """The example's environment: FakeBox's credentials at ``base_url`` and the callers' ``keys``."""
    env = {
        "BOX_CLIENT_ID": fake.client_id,
        "BOX_CLIENT_SECRET": fake.client_secret,
        "BOX_ENTERPRISE_ID": "42",
        "BOX_BASE_URL": base_url,
    }
    return env if keys is None else {**env, "TERMINATE_API_KEYS": keys}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_without_the_redis_extra_the_app_serves() -> None:
    """Where ``import redis`` fails and BOX_REDIS_URL is not set, the example starts and terminates."""
    fake = FakeBox()
    async with fake.serve() as box_url, uvicorn_example(service_env(fake, box_url), without_redis=True) as example:
        assert await asyncio.wait_for(example.read_until_serving(), BOUND), example.stderr
        async with httpx.AsyncClient(base_url=example.url, timeout=BOUND, headers=bearer(KEY)) as http:
            response = await http.post("/terminate", json={"user_ids": ["1", "2"]})
    assert response.status_code == 200
    assert response.json()["ok"] is True
    assert fake.terminated["user_ids"] == ["1", "2"]


async def test_without_the_redis_extra_box_redis_url_stops_startup_saying_how_to_install_it() -> None:
    """With BOX_REDIS_URL set where ``import redis`` fails, startup fails with one sentence on installing the extra."""
    fake = FakeBox()
    env = {**service_env(fake, "http://127.0.0.1:9"), "BOX_REDIS_URL": "redis://127.0.0.1:9/0"}
    async with uvicorn_example(env, without_redis=True) as example:
        serving = await asyncio.wait_for(example.read_until_serving(), BOUND)
        stderr = await example.stop()
    assert not serving, stderr
    assert example.process.returncode != 0
    assert [line for line in stderr.splitlines() if line.startswith("RuntimeError: ")] == [NO_REDIS_EXTRA]


@pytest.mark.parametrize(
    "headers", [pytest.param({}, id="no-key"), pytest.param(bearer("terminate-key-wrong00000"), id="wrong-key")]
)
async def test_without_the_right_key_the_answer_is_401_and_box_receives_nothing(headers: dict[str, str]) -> None:
    """No key, or a wrong one: 401 with WWW-Authenticate, and FakeBox receives no request (not even for a token)."""
    fake = FakeBox(users=["1"])
    async with fake.serve() as box_url, uvicorn_example(service_env(fake, box_url)) as example:
        assert await asyncio.wait_for(example.read_until_serving(), BOUND), example.stderr
        async with httpx.AsyncClient(base_url=example.url, timeout=BOUND, headers=headers) as http:
            response = await http.post("/terminate", json={"user_ids": ["1"]})
        stderr = await example.stop()
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert fake.requests == []
    assert "box_sessions.audit" not in stderr


async def test_the_right_key_is_served_and_audited_in_one_line_without_the_key() -> None:
    """The right key: 200, and one audit line naming the key's fingerprint, never the key."""
    fake = FakeBox(users=["1", "2"])
    async with fake.serve() as box_url, uvicorn_example(service_env(fake, box_url)) as example:
        assert await asyncio.wait_for(example.read_until_serving(), BOUND), example.stderr
        async with httpx.AsyncClient(base_url=example.url, timeout=BOUND, headers=bearer(KEY)) as http:
            response = await http.post("/terminate", json={"user_ids": ["1", "2"]})
            metrics = await http.get("/metrics")
        stderr = await example.stop()
    assert response.status_code == 200
    assert fake.terminated["user_ids"] == ["1", "2"]
    assert metrics.status_code == 200
    assert 'box_sessions_ids_total{outcome="terminated"} 2' in metrics.text
    audit = [line for line in stderr.splitlines() if " box_sessions.audit " in line]
    assert len(audit) == 1, stderr
    record = json.loads(audit[0].split(" box_sessions.audit ", 1)[1])
    assert record["key_fingerprint"] == hashlib.sha256(KEY.encode()).hexdigest()[:12]
    assert (record["inputs"], record["terminated"], record["failed"]) == (2, 2, 0)
    assert record["accepted_request_ids"] == [r.request_id for r in fake.requests if r.status == 202]
    assert KEY not in stderr


async def test_without_api_keys_the_app_exits_at_startup_naming_the_variable() -> None:
    """Without TERMINATE_API_KEYS uvicorn's startup fails with one sentence that names it; nothing is served."""
    fake = FakeBox()
    async with fake.serve() as box_url, uvicorn_example(service_env(fake, box_url, keys=None)) as example:
        serving = await asyncio.wait_for(example.read_until_serving(), BOUND)
        stderr = await example.stop()
    assert not serving, stderr
    assert example.process.returncode != 0
    assert [line for line in stderr.splitlines() if line.startswith("RuntimeError: ")] == [NO_API_KEYS]
    assert fake.requests == []
