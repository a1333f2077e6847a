"""The HTTP stack: httpx2 where installed, httpx otherwise, one module chosen at import; the other's objects refused."""

from __future__ import annotations

import importlib
import importlib.util
import os
import subprocess
import sys

import pytest

import box_sessions
from box_sessions._http import httpx

HAS_HTTPX2 = importlib.util.find_spec("httpx2") is not None
#: Whether this process's environment chose httpx (nox's httpx sessions set it where httpx2 may be installed).
HTTPX_CHOSEN = os.environ.get("BOX_SESSIONS_HTTP", "").strip().lower() == "httpx"


def stack_in_a_process(prelude: str = "", env: dict[str, str] | None = None) -> str:
    """The ``HTTP_STACK`` a fresh interpreter chooses, after ``prelude``, with ``env`` added to the environment."""
    code = f"{prelude}\nimport box_sessions\nprint(box_sessions.HTTP_STACK)"
    environment = {k: v for k, v in os.environ.items() if k != "BOX_SESSIONS_HTTP"} | (env or {})
    done = subprocess.run(  # noqa: S603 - this interpreter running a one-line script
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True, env=environment
    )
    return done.stdout.strip()


def test_httpx2_is_preferred_where_it_is_installed() -> None:
    """HTTP_STACK names httpx2 when it can be imported (and the environment did not choose httpx), httpx otherwise."""
    assert box_sessions.HTTP_STACK == ("httpx2" if HAS_HTTPX2 and not HTTPX_CHOSEN else "httpx") == httpx.__name__


def test_without_httpx2_the_package_uses_httpx() -> None:
    """In a process where httpx2 cannot be imported, the package uses httpx."""
    assert stack_in_a_process("import sys; sys.modules['httpx2'] = None") == "httpx"


def test_the_environment_can_choose_httpx() -> None:
    """BOX_SESSIONS_HTTP=httpx chooses httpx, whether or not httpx2 is installed."""
    assert stack_in_a_process(env={"BOX_SESSIONS_HTTP": "httpx"}) == "httpx"


@pytest.mark.skipif(not HAS_HTTPX2, reason="needs both stacks installed (the httpx2 sessions)")
@pytest.mark.parametrize("argument", ["http_client", "transport"])
async def test_the_other_stacks_objects_are_refused_naming_both(argument: str) -> None:
    """An object of the other stack is a TypeError that names both stacks and says how to choose."""
    other = importlib.import_module("httpx" if box_sessions.HTTP_STACK == "httpx2" else "httpx2")
    value = other.AsyncClient() if argument == "http_client" else other.AsyncHTTPTransport()
    try:
        with pytest.raises(TypeError) as raised:
            box_sessions.BoxClient(box_sessions.DeveloperTokenAuth("dev-token"), **{argument: value})
    finally:
        await value.aclose()
    message = str(raised.value)
    assert argument in message
    assert "httpx2" in message
    assert f"{other.__name__}." in message
    assert "BOX_SESSIONS_HTTP=httpx" in message or "install httpx2" in message


async def test_this_stacks_client_and_transport_are_taken() -> None:
    """The stack in use: its AsyncClient and its transports are accepted (and the caller's client left open)."""
    async with httpx.AsyncClient() as own:
        async with box_sessions.BoxClient(box_sessions.DeveloperTokenAuth("dev-token"), http_client=own):
            pass
        assert not own.is_closed
    async with box_sessions.BoxClient(
        box_sessions.DeveloperTokenAuth("dev-token"), transport=httpx.MockTransport(lambda request: httpx.Response(202))
    ):
        pass


#: A client whose requests respx answers, if it mocks the package's stack: sent to the discard port
#: of 127.0.0.1, so that a request respx let through reaches no host but this one, and is refused.
RESPX_SCRIPT = """
import asyncio, httpx, respx, box_sessions

async def main():
    with respx.mock(assert_all_mocked=True) as mock:
        route = mock.post("http://127.0.0.1:9/2.0/users/terminate_sessions").respond(202, json={"message": "ok"})
        auth = box_sessions.DeveloperTokenAuth("dev-token")
        retry = box_sessions.RetryPolicy(max_attempts=1)
        async with box_sessions.BoxClient(auth, base_url="http://127.0.0.1:9", rate_limit=None, retry=retry) as client:
            await client.session_termination.terminate_users_sessions(user_ids=["1"])
    print(box_sessions.HTTP_STACK, route.call_count)

asyncio.run(main())
"""


def test_respx_mocks_the_package_when_the_environment_chooses_httpx() -> None:
    """respx mocks httpx only: with BOX_SESSIONS_HTTP=httpx, a suite mocking with respx mocks the package's requests.

    Run in a process of its own, so it holds under either stack this suite runs on, httpx2 installed or not.
    """
    environment = os.environ | {"BOX_SESSIONS_HTTP": "httpx"}
    done = subprocess.run(  # noqa: S603 - this interpreter running a script of this file
        [sys.executable, "-c", RESPX_SCRIPT], capture_output=True, text=True, timeout=60, check=False, env=environment
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["httpx", "1"]
