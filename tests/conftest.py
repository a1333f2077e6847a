"""Shared fixtures: a fake clock, clients wired to scripted routes, and Box-shaped answers."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

import box_sessions
from box_sessions.testing import FakeBox, FakeClock, LoopbackServer, Reply

from .support.http import httpx
from .support.redis_server import RedisServer
from .support.routes import Routes

BASE = "https://api.box.com"
USERS_URL = f"{BASE}/2.0/users/terminate_sessions"
GROUPS_URL = f"{BASE}/2.0/groups/terminate_sessions"
TOKEN_URL = f"{BASE}/oauth2/token"
ACCEPTED = {"message": "Request is successful, please check the admin events for the status of the job"}

#: The refresh token the suite's OAuth 2.0 credentials start from, when no FakeBox issued one.
REFRESH_TOKEN = "r3fr3sh-0123456789"

#: Retries a few milliseconds apart: for clients on the real clock, against servers on 127.0.0.1.
FAST_RETRY = box_sessions.RetryPolicy(initial_backoff=0.01, max_backoff=0.05, total_timeout=20)

#: The type of the ``make_client`` fixture: builds a `BoxClient` on the fake clock.
MakeClient = Callable[..., box_sessions.BoxClient]


# -- what Box answers: the bodies, then as route answers and as LoopbackServer replies ------------


def box_error_body(status: int, code: str = "error", message: str = "something failed") -> dict[str, Any]:
    """The body of an error answer as Box sends it (``ClientError``)."""
    return {
        "type": "error",
        "status": status,
        "code": code,
        "message": message,
        "request_id": f"req{status}",
        "help_url": "https://developer.box.com/guides/api-calls/permissions-and-errors/common-errors/",
        "context_info": {"errors": [{"reason": "invalid_parameter"}]},
    }


def token_body(
    access_token: str = "tok-1", *, expires_in: float = 3600, refresh_token: str | None = None
) -> dict[str, Any]:
    """The body of a token endpoint's success, as Box sends it (with ``refresh_token`` for OAuth 2.0)."""
    body: dict[str, Any] = {
        "access_token": access_token,
        "expires_in": expires_in,
        "token_type": "bearer",
        "restricted_to": [],
    }
    if refresh_token is not None:
        body["refresh_token"] = refresh_token
    return body


def box_error(status: int, code: str = "error", message: str = "something failed", **headers: str) -> httpx.Response:
    """An error response shaped as Box sends it; ``retry_after="30"`` sends the header ``retry-after: 30``."""
    headers = {k.replace("_", "-"): v for k, v in headers.items()}
    return httpx.Response(status, json=box_error_body(status, code, message), headers=headers)


def accepted() -> httpx.Response:
    """Box's 202 to a termination request."""
    return httpx.Response(202, json=ACCEPTED)


def token_answer(token: str = "tok-1", expires_in: float = 3600) -> httpx.Response:
    """A token endpoint's success."""
    return httpx.Response(200, json=token_body(token, expires_in=expires_in))


def json_reply(status: int, body: Any) -> Reply:
    """A `LoopbackServer` handler's answer with a JSON body (``json_reply(202, ACCEPTED)``)."""
    return Reply(status, json.dumps(body).encode(), {"content-type": "application/json"})


def accepted_reply() -> Reply:
    """Box's 202 to a termination request, as a `LoopbackServer` handler answers it."""
    return json_reply(202, ACCEPTED)


# Every secret the suite uses, and the shapes of the ones FakeBox makes up. No log record of any
# test, at any level and from any library, may contain one.
SECRETS = re.compile(
    r"dev-token|very-secret|fake-client-secret|fake-developer-token|tok-secret|s3cr3t|r3fr3sh|acc3ss"
    r"|fake-access-[0-9a-f]{16}|fake-refresh-[0-9a-f]{16}|correct horse battery staple|terminate-key-\w+"
    r"|PRIVATE KEY|Bearer (?!realm=)[A-Za-z0-9._~+/=-]{6,}|client_secret=(?!\*\*\*)|refresh_token=\w|assertion=\w"
)


@pytest.fixture(autouse=True)
def no_secret_in_any_log(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Capture every log record at DEBUG and fail the test if one shows a token, secret or key."""
    caplog.set_level(logging.DEBUG)
    yield
    # caplog.records holds only the current phase's records (teardown, here): read every phase.
    records = [*caplog.get_records("setup"), *caplog.get_records("call"), *caplog.records]
    for record in records:
        text = record.getMessage() + (caplog.handler.format(record) if record.exc_info else "")
        found = find_secret(text)
        assert found is None, f"{record.name} logged a secret ({found[:12]}...): {text[:200]}"


def find_secret(text: str) -> str | None:
    """The first secret-looking part of ``text``, or None."""
    match = SECRETS.search(text)
    return None if match is None else match.group(0)


def form_of(request: httpx.Request) -> dict[str, str]:
    """The url-encoded form a request carries (a token request's)."""
    return {k: v[0] for k, v in parse_qs(request.content.decode()).items()}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def routes() -> Routes:
    """Box's answers scripted per route (``routes.post(USERS_URL).mock(return_value=accepted())``).

    The clients of ``make_client`` and ``client`` send through ``routes.transport`` in a test that
    asks for this fixture; a client a test builds itself takes ``transport=routes.transport``.
    """
    return Routes()


@pytest.fixture
async def make_client(clock: FakeClock, request: pytest.FixtureRequest) -> AsyncIterator[MakeClient]:
    """Build clients on the fake clock, no jitter; each is closed at teardown (closing one twice is harmless).

    In a test that asks for ``routes``, they send through its transport unless given
    ``transport=`` or ``http_client=``.
    """
    made: list[box_sessions.BoxClient] = []
    scripted: Routes | None = request.getfixturevalue("routes") if "routes" in request.fixturenames else None

    def make(auth: box_sessions.BoxAuth | None = None, **kwargs: Any) -> box_sessions.BoxClient:
        if scripted is not None and "http_client" not in kwargs:
            kwargs.setdefault("transport", scripted.transport)
        kwargs.setdefault("clock", clock)
        kwargs.setdefault("retry", box_sessions.RetryPolicy(jitter=False))
        kwargs.setdefault("rate_limit", None)  # pacing has tests of its own; here it would add waits
        client = box_sessions.BoxClient(auth or box_sessions.DeveloperTokenAuth("dev-token"), **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()


@pytest.fixture
async def client(
    make_client: MakeClient,
) -> AsyncIterator[box_sessions.BoxClient]:
    async with make_client() as c:
        yield c


@pytest.fixture
def ccg() -> box_sessions.CCGAuth:
    """CCG credentials of client "cid" acting for enterprise 42 (for scripted routes and hand-written servers)."""
    return box_sessions.CCGAuth(client_id="cid", client_secret="very-secret", enterprise_id="42")


def fake_ccg(fake: FakeBox, *, client_secret: str | None = None) -> box_sessions.CCGAuth:
    """CCG credentials of FakeBox's app acting for enterprise 1 (with another ``client_secret``: ones it refuses)."""
    secret = fake.client_secret if client_secret is None else client_secret
    return box_sessions.CCGAuth(client_id=fake.client_id, client_secret=secret, enterprise_id="1")


def auth_of_kind(
    kind: str,
    *,
    private_key: str,
    client_id: str = "cid",
    client_secret: str = "very-secret",
    refresh_token: str = REFRESH_TOKEN,
) -> box_sessions.BoxAuth:
    """One app's credentials as ``kind``: "ccg" or "jwt" acting for enterprise 42, "oauth2" with a refresh token."""
    if kind == "ccg":
        return box_sessions.CCGAuth(client_id=client_id, client_secret=client_secret, enterprise_id="42")
    if kind == "jwt":
        return box_sessions.JWTAuth(
            client_id=client_id,
            client_secret=client_secret,
            public_key_id="key-1",
            private_key=private_key,
            enterprise_id="42",
        )
    if kind == "oauth2":
        return box_sessions.OAuth2Auth(client_id=client_id, client_secret=client_secret, refresh_token=refresh_token)
    raise ValueError(f"no credentials of kind {kind!r}")


async def terminate(client: box_sessions.BoxClient, user_id: str = "1") -> box_sessions.SessionTerminationMessage:
    """Terminate one user's sessions: the smallest call that goes through every layer of the client."""
    return await client.session_termination.terminate_users_sessions(user_ids=[user_id])


# -- waiting for another task, a server or a process: on a condition or an event, never on the clock ----

#: Seconds after which a wait on another task, thread or process fails the test. Only a failing
#: test waits this long: a passing one goes on as soon as what it waits for happens.
BOUND = 10.0


async def until(condition: Callable[[], bool], *, turns: int = 1000) -> None:
    """Let other tasks run until ``condition()`` holds; fail after ``turns`` turns of the event loop.

    Waits on a condition, never on the clock: the other task gets there in a few turns however
    busy the machine is.
    """
    for _ in range(turns):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError(f"the condition did not hold after {turns} turns of the event loop")


def awaits(task: asyncio.Task[Any], function: str) -> bool:
    """Whether ``task`` is suspended inside a call of the coroutine function named ``function``.

    Follows the coroutines the task awaits, one inside the other. A call may run its request in a
    task of its own (see ``box_sessions._tasks.cancelled_once``), where the chain ends: to wait for
    calls to reach a point, count the tasks that are there with `tasks_in`.
    """
    awaited: Any = task.get_coro()
    while awaited is not None:
        frame = getattr(awaited, "cr_frame", None)
        if frame is not None and frame.f_code.co_name == function:
            return True
        awaited = getattr(awaited, "cr_await", None)
    return False


def tasks_in(function: str) -> int:
    """How many tasks of this event loop are suspended inside a call of ``function`` (see `awaits`).

    With `until`, a test waits for other tasks to reach a point, such as calls waiting in
    ``get_token`` for the token request in flight, instead of sleeping and hoping they got there.
    """
    return sum(awaits(task, function) for task in asyncio.all_tasks())


def server_tasks(server: LoopbackServer) -> set[asyncio.Task[object]]:
    """``server.tasks``, and the tasks of connections it accepted whose first step has not run yet.

    asyncio makes a connection's task when it accepts the connection; the server counts it (in
    ``server.tasks`` and ``open_connections``) only once that task first runs, which on a busy
    machine can be a few turns later.
    """
    return {*server.tasks, *_accepted_unstarted(server)}


def _accepted_unstarted(server: LoopbackServer) -> set[asyncio.Task[object]]:
    code = LoopbackServer._on_connection.__code__
    found = set()
    for task in asyncio.all_tasks():
        coroutine: Any = task.get_coro()
        frame = getattr(coroutine, "cr_frame", None)
        if getattr(coroutine, "cr_code", None) is code and frame is not None and frame.f_locals.get("self") is server:
            found.add(task)
    return found - server.tasks


async def wait_for_no_connections(server: LoopbackServer) -> None:
    """Wait, on the server's own tasks, until it has no open connection; fail after `BOUND` s."""
    await _wait_for_server(
        server, lambda: server.open_connections == 0 and not _accepted_unstarted(server), "open connections"
    )


async def wait_for_server_idle(server: LoopbackServer) -> None:
    """Wait until every task of the server has ended: no connection, handler or socket watcher left."""
    await _wait_for_server(server, lambda: not server_tasks(server), "tasks running")


async def _wait_for_server(server: LoopbackServer, done: Callable[[], bool], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + BOUND
    while not done():
        remaining = deadline - loop.time()
        running = server_tasks(server)
        if remaining <= 0 or not running:
            raise AssertionError(f"the server still has {what} after {BOUND:g} s")
        # Each end of a connection, handler or watcher is a step: check again after each.
        await asyncio.wait(running, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)


class HeldClock(FakeClock):
    """A `FakeClock` whose sleeps, between `hold` and `release`, wait for the release (or a cancel).

    A test sees who waits and for how long (``sleeps``) and how many wait at once (``waiting``)
    before any time passes; on `release` each sleeper wakes at the time it slept until.
    """

    def __init__(self) -> None:
        super().__init__()
        self.waiting = 0
        self._held = False
        self._released = asyncio.Event()
        self._changed = asyncio.Event()

    def hold(self) -> None:
        """From now on, sleeps wait for `release`."""
        self._held = True
        self._released.clear()

    def release(self) -> None:
        """Wake every sleeper; sleeps from now on take no time again."""
        self._held = False
        self._released.set()

    async def sleep(self, seconds: float) -> None:
        if not self._held:
            await super().sleep(seconds)
            return
        self.sleeps.append(seconds)
        wake = self.now + max(0.0, seconds)
        self._count(+1)
        try:
            await self._released.wait()
        finally:
            self._count(-1)
        self.now = max(self.now, wake)

    async def until_waiting(self, count: int) -> None:
        """Wait until ``count`` sleeps wait at once; fail after `BOUND` s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + BOUND
        while self.waiting < count:
            self._changed.clear()
            await asyncio.wait_for(self._changed.wait(), max(0.0, deadline - loop.time()))

    def _count(self, change: int) -> None:
        self.waiting += change
        self._changed.set()


@pytest.fixture
def redis_binary() -> str:
    """The redis-server executable; the test is skipped, saying so, when it is not installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed: the Redis tests are skipped")
    return binary


@pytest.fixture
def redis_server(redis_binary: str, tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server on 127.0.0.1 (free port, no persistence), killed at teardown."""
    server = RedisServer(redis_binary, tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture(scope="session")
def rsa_keys() -> tuple[str, str]:
    """A fresh RSA key pair for JWT tests: (private PEM, public PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public
