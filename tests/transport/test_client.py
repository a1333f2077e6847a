"""BoxClient's construction, lifecycle, and the endpoints' input checks."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from box_sessions import BoxClient, CCGAuth, DeveloperTokenAuth, RetryPolicy, SessionTerminationMessage

from ..conftest import ACCEPTED, GROUPS_URL, USERS_URL, accepted, terminate, token_answer
from ..support import hostile
from ..support.http import HTTP_STACK, httpx
from ..support.routes import Routes

AUTH = DeveloperTokenAuth("dev-token")
PROXY = "https://proxy.example.com/box"


@pytest.mark.parametrize(
    "url",
    [
        "https://api.box.com",
        "https://api.box.com/",
        "http://127.0.0.1:8080",
        "http://127.3.4.5",
        "http://localhost:1",
        "http://[::1]:99",
    ],
)
def test_secure_or_loopback_base_url_accepted(url: str) -> None:
    """https anywhere, plain http only to loopback hosts."""
    assert BoxClient(AUTH, base_url=url) is not None


@pytest.mark.parametrize(
    ("url", "error"),
    [
        pytest.param("http://api.box.com", ValueError, id="plain-http"),
        pytest.param("http://10.0.0.1", ValueError, id="private-range"),
        pytest.param("http://localhost.evil.com", ValueError, id="localhost-lookalike"),
        pytest.param("ftp://api.box.com", ValueError, id="ftp"),
        pytest.param("api.box.com", ValueError, id="no-scheme"),
        pytest.param(42, TypeError, id="not-a-str"),
        pytest.param("https://[::1", ValueError, id="unparseable"),
    ],
)
def test_insecure_base_url_refused(url: Any, error: type[Exception]) -> None:
    """A bearer token is never sent over plain http except to loopback: refused at construction."""
    with pytest.raises(error, match="base_url"):
        BoxClient(AUTH, base_url=url)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        pytest.param({"timeout": "10"}, TypeError, "timeout", id="timeout-str"),
        pytest.param({"timeout": True}, TypeError, "timeout", id="timeout-bool"),
        pytest.param({"timeout": 0}, ValueError, "timeout", id="timeout-zero"),
        pytest.param({"retry": {"max_attempts": 3}}, TypeError, "retry", id="retry-dict"),
        pytest.param({"http_client": object()}, TypeError, "http_client", id="http-client"),
    ],
)
def test_bad_options_refused(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    """Options of the wrong type or value raise at construction, naming the option."""
    with pytest.raises(error, match=match):
        BoxClient(AUTH, **kwargs)


def test_auth_must_be_an_auth_object() -> None:
    """A bare token string instead of an auth object is refused with a hint."""
    with pytest.raises(TypeError, match="DeveloperTokenAuth"):
        BoxClient("dev-token")  # type: ignore[arg-type]


def test_arguments_after_auth_are_keyword_only() -> None:
    """base_url cannot be passed positionally."""
    with pytest.raises(TypeError):
        BoxClient(AUTH, "https://api.box.com")  # type: ignore[call-arg]


async def test_closed_client_cannot_be_reopened() -> None:
    """After aclose, entering again or using the manager raises RuntimeError."""
    client = BoxClient(AUTH)
    async with client:
        pass
    assert client.is_closed
    with pytest.raises(RuntimeError, match="reopened"):
        await client.__aenter__()
    with pytest.raises(RuntimeError, match="closed"):
        _ = client.session_termination
    await client.aclose()  # closing twice is harmless


async def test_client_cannot_be_entered_twice() -> None:
    """Entering an open client again raises RuntimeError."""
    async with BoxClient(AUTH) as client:
        with pytest.raises(RuntimeError, match="already open"):
            await client.__aenter__()


async def test_caller_http_client_is_used_and_left_open(routes: Routes) -> None:
    """A caller's AsyncClient carries the calls and stays open after the BoxClient closes."""
    route = routes.post(USERS_URL).mock(return_value=accepted())
    async with httpx.AsyncClient(headers={"X-App": "mine"}, timeout=7.0, transport=routes.transport) as http:
        async with BoxClient(AUTH, http_client=http) as client:
            await client.session_termination.terminate_users_sessions(user_ids=["1"])
        assert not http.is_closed
        request = route.calls.last.request
        assert request.headers["x-app"] == "mine"
        assert request.extensions["timeout"]["read"] == 7.0  # the caller's timeout, as no timeout= was given


async def test_own_http_client_is_closed() -> None:
    """The client this BoxClient made is closed with it."""
    client = BoxClient(AUTH)
    async with client:
        pass
    assert client._http.is_closed


async def test_timeout_accepts_httpx_timeout(routes: Routes) -> None:
    """timeout= takes an httpx.Timeout as is."""
    route = routes.post(GROUPS_URL).mock(return_value=accepted())
    async with BoxClient(
        AUTH,
        timeout=httpx.Timeout(3.0, connect=1.0),
        retry=RetryPolicy(total_timeout=None),
        transport=routes.transport,
    ) as client:
        await client.session_termination.terminate_groups_sessions(["1"])
    assert route.calls.last.request.extensions["timeout"] == {
        "connect": 1.0,
        "read": 3.0,
        "write": 3.0,
        "pool": 3.0,
    }


async def test_usable_without_async_with(routes: Routes) -> None:
    """Like httpx, a client works before it is entered; aclose ends it."""
    routes.post(GROUPS_URL).mock(return_value=accepted())
    client = BoxClient(AUTH, transport=routes.transport)
    msg = await client.session_termination.terminate_groups_sessions([1])
    await client.aclose()
    assert msg.message == ACCEPTED["message"]


@pytest.mark.parametrize("base_url", [PROXY, PROXY + "/"], ids=["no-slash", "slash"])
async def test_base_url_with_path_prefix(routes: Routes, ccg: CCGAuth, base_url: str) -> None:
    """A base_url with a path (a proxy prefix) keeps it in front of /oauth2/token and /2.0."""
    routes.post(f"{PROXY}/oauth2/token").mock(return_value=token_answer("acc3ss-1"))
    routes.post(f"{PROXY}/2.0/users/terminate_sessions").mock(return_value=accepted())
    routes.post(f"{PROXY}/2.0/groups/terminate_sessions").mock(return_value=accepted())
    async with BoxClient(ccg, base_url=base_url, rate_limit=None, transport=routes.transport) as client:
        message = await terminate(client)
        await client.session_termination.terminate_groups_sessions(["1"])
    assert isinstance(message, SessionTerminationMessage)
    assert [call.request.url.path for call in routes.calls] == [
        "/box/oauth2/token",
        "/box/2.0/users/terminate_sessions",
        "/box/2.0/groups/terminate_sessions",
    ]


async def test_users_body_carries_both_lists_deduplicated(routes: Routes, client: BoxClient) -> None:
    """Ids become digit strings, duplicates are sent once, and both keys are always present."""
    route = routes.post(USERS_URL).mock(return_value=accepted())
    await client.session_termination.terminate_users_sessions(user_logins=("a@example.com", "a@example.com"))
    assert json.loads(route.calls.last.request.content) == {
        "user_ids": [],
        "user_logins": ["a@example.com"],
    }
    await client.session_termination.terminate_users_sessions([1, "1", 2], ["b@example.com"])
    assert json.loads(route.calls.last.request.content) == {
        "user_ids": ["1", "2"],
        "user_logins": ["b@example.com"],
    }


async def test_groups_body(routes: Routes, client: BoxClient) -> None:
    """The groups endpoint gets {"group_ids": [...]}."""
    route = routes.post(GROUPS_URL).mock(return_value=accepted())
    msg = await client.session_termination.terminate_groups_sessions(group_ids=[456, "789"])
    assert json.loads(route.calls.last.request.content) == {"group_ids": ["456", "789"]}
    assert msg.message == ACCEPTED["message"]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        pytest.param({}, ValueError, "both empty", id="nothing"),
        pytest.param({"user_ids": [], "user_logins": []}, ValueError, "both empty", id="both-empty"),
        pytest.param({"user_ids": "123"}, TypeError, r"user_ids: expected a list.*bare str", id="bare-string"),
        pytest.param({"user_ids": 123}, TypeError, "user_ids: expected a list", id="bare-int"),
        pytest.param({"user_ids": {"1": 2}}, TypeError, "user_ids: expected a list", id="dict"),
        pytest.param(
            {"user_ids": [None]},
            TypeError,
            "user_ids: an id must be a str or int, got NoneType",
            id="none-item",
        ),
        pytest.param({"user_ids": [True]}, TypeError, "user_ids: .*got bool", id="bool"),
        pytest.param({"user_ids": [1.0]}, TypeError, "user_ids: .*got float", id="float"),
        pytest.param({"user_ids": [""]}, ValueError, "user_ids: .*empty string", id="empty-id"),
        pytest.param(
            {"user_ids": ["12a"]},
            ValueError,
            "user_ids: an id must be a string of digits",
            id="non-digit",
        ),
        pytest.param(
            {"user_ids": ["١٢٣"]},
            ValueError,
            "user_ids: an id must be a string of digits",
            id="non-ascii-digits",
        ),
        pytest.param({"user_ids": [-5]}, ValueError, "user_ids: an id must not be negative", id="negative"),
        pytest.param(
            {"user_logins": "a@example.com"},
            TypeError,
            "user_logins: expected a list",
            id="bare-login",
        ),
        pytest.param(
            {"user_logins": [""]},
            ValueError,
            "user_logins: a login must not be empty",
            id="empty-login",
        ),
        pytest.param(
            {"user_logins": [None]},
            TypeError,
            "user_logins: a login must be a str",
            id="none-login",
        ),
        pytest.param({"user_logins": ["nobody"]}, ValueError, "user_logins: .*needs an '@'", id="no-at"),
        pytest.param(
            {"user_logins": [" a@example.com"]},
            ValueError,
            "user_logins: .*white space",
            id="space",
        ),
    ],
)
async def test_bad_user_input_raises_before_sending(
    routes: Routes,
    client: BoxClient,
    kwargs: dict[str, Any],
    error: type[Exception],
    match: str,
) -> None:
    """Bad input raises TypeError/ValueError naming the argument, and nothing is sent."""
    route = routes.post(USERS_URL).mock(return_value=accepted())
    with pytest.raises(error, match=match):
        await client.session_termination.terminate_users_sessions(**kwargs)
    assert route.call_count == 0


@pytest.mark.parametrize(
    ("group_ids", "error", "match"),
    [
        pytest.param([], ValueError, "group_ids is empty", id="empty"),
        pytest.param(None, ValueError, "group_ids is empty", id="none"),
        pytest.param("456", TypeError, "group_ids: expected a list", id="bare-string"),
        pytest.param(["x"], ValueError, "group_ids: an id must be a string of digits", id="non-digit"),
    ],
)
async def test_bad_group_input_raises_before_sending(
    routes: Routes,
    client: BoxClient,
    group_ids: Any,
    error: type[Exception],
    match: str,
) -> None:
    """Bad group ids raise naming group_ids, and nothing is sent."""
    route = routes.post(GROUPS_URL).mock(return_value=accepted())
    with pytest.raises(error, match=match):
        await client.session_termination.terminate_groups_sessions(group_ids)
    assert route.call_count == 0


class _RecordingTransport(httpx.MockTransport):
    """A MockTransport that remembers whether it was closed."""

    closed = False

    async def aclose(self) -> None:
        self.closed = True


async def test_transport_is_used_and_closed_with_the_client() -> None:
    """A transport passed to BoxClient carries every request and is closed when the client is."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202, json=ACCEPTED)

    transport = _RecordingTransport(handler)
    async with BoxClient(DeveloperTokenAuth("dev-token"), transport=transport, rate_limit=None) as client:
        await client.session_termination.terminate_users_sessions(user_ids=["1"])
        assert not transport.closed
    assert [str(r.url) for r in seen] == [USERS_URL]
    assert seen[0].headers["authorization"] == "Bearer dev-token"
    assert transport.closed


async def test_transport_and_http_client_together_are_refused() -> None:
    """Giving both transport and http_client is a TypeError naming both."""
    async with httpx.AsyncClient() as http_client:
        with pytest.raises(TypeError, match=r"transport or http_client, not both"):
            BoxClient(
                DeveloperTokenAuth("dev-token"),
                transport=httpx.MockTransport(lambda _: accepted()),
                http_client=http_client,
            )


def test_transport_of_the_wrong_type_is_refused() -> None:
    """A transport that is not an AsyncBaseTransport of the stack in use is refused, naming the argument."""
    with pytest.raises(TypeError, match=rf"transport must be an {HTTP_STACK}\.AsyncBaseTransport, got str"):
        BoxClient(DeveloperTokenAuth("dev-token"), transport="http://x")  # type: ignore[arg-type]


# In a fresh interpreter: today the second loop's connection poisons the pool, and what it leaves
# behind would surface as an unraisable warning in whichever test runs next.
OTHER_LOOP_SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys
    import box_sessions

    async def call(client):
        await client.session_termination.terminate_users_sessions(user_ids=["1"])

    def from_another_loop(client, outcomes):
        for _ in range(2):
            try:
                asyncio.run(asyncio.wait_for(call(client), 3))
                outcomes.append(None)
            except Exception as exc:
                outcomes.append({"type": type(exc).__name__, "message": str(exc)})

    async def main(url):
        auth = box_sessions.DeveloperTokenAuth("dev-token")
        client = box_sessions.BoxClient(auth, base_url=url, rate_limit=None)
        await call(client)  # the client now belongs to this loop
        outcomes = []
        await asyncio.to_thread(from_another_loop, client, outcomes)
        try:
            await client.aclose()
            closed = None
        except Exception as exc:
            closed = f"{type(exc).__name__}: {exc}"
        print(json.dumps({"outcomes": outcomes, "close_error": closed}))

    asyncio.run(main(sys.argv[1]))
    """
)


def test_a_client_used_from_another_event_loop_says_so_every_time() -> None:
    """A client called from a second event loop raises RuntimeError saying so, twice, and still closes in its own."""
    with hostile.serve(lambda _request: hostile.accepted()) as server:
        run = subprocess.run(  # noqa: S603 - our own interpreter running our own script
            [sys.executable, "-c", OTHER_LOOP_SCRIPT, server.url],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        sent = server.count("/2.0/users/terminate_sessions")
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout)
    for outcome in result["outcomes"]:
        assert outcome is not None, result
        assert outcome["type"] == "RuntimeError", result
        assert re.search(r"client", outcome["message"], re.IGNORECASE), result
        assert re.search(r"(another|different|other) event loop", outcome["message"]), result
    assert sent == 1
    assert result["close_error"] is None
