"""The HTTP stack: httpx2 where installed, httpx otherwise, one module chosen at import; the other's objects refused."""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys

import pytest

import box_sessions
from box_sessions._http import httpx

HAS_HTTPX2 = importlib.util.find_spec("httpx2") is not None


def stack_in_a_process(prelude: str = "", env: dict[str, str] | None = None) -> str:
    """The ``HTTP_STACK`` a fresh interpreter chooses, after ``prelude``, with ``env`` added to the environment."""
    import os  # noqa: PLC0415 - only here

    code = f"{prelude}\nimport box_sessions\nprint(box_sessions.HTTP_STACK)"
    environment = {k: v for k, v in os.environ.items() if k != "BOX_SESSIONS_HTTP"} | (env or {})
    done = subprocess.run(  # noqa: S603 - this interpreter running a one-line script
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True, env=environment
    )
    return done.stdout.strip()


def test_httpx2_is_preferred_where_it_is_installed() -> None:
    """HTTP_STACK names httpx2 when it can be imported, httpx otherwise; the package's module is that one."""
    assert box_sessions.HTTP_STACK == ("httpx2" if HAS_HTTPX2 else "httpx") == httpx.__name__


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
