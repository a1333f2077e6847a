"""Issue 10, memory: a huge or deeply nested answer neither fills memory nor breaks the parser."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap

import pytest

from box_sessions import (
    AuthenticationError,
    BadRequestError,
    BoxClient,
    CCGAuth,
    DeveloperTokenAuth,
    RetryPolicy,
    SessionTerminationMessage,
)

from ..support.hostile import Action, Answer, Handler, Huge, Request, accepted, serve

HUGE = 300 * 1024 * 1024  # bytes in each huge answer
MAX_GROWTH_MB = 80  # the peak RSS a call may add; a bounded reader needs a few MB
USERS = "/2.0/users/terminate_sessions"
TOKEN = "/oauth2/token"
DEPTH = 10_000
NESTED = b"[" * DEPTH + b"]" * DEPTH

# Run in a fresh interpreter so that no earlier test's peak hides this call's: it warms up with a
# normal call (imports, first connection), then reports how much the peak RSS grew during the call.
CLIENT_SCRIPT = textwrap.dedent(
    """
    import asyncio, json, resource, sys
    import box_sessions

    def peak_mb():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    async def main(url, kind):
        warm = box_sessions.DeveloperTokenAuth("dev-token")
        async with box_sessions.BoxClient(warm, base_url=url, rate_limit=None) as client:
            await client.session_termination.terminate_users_sessions(user_ids=["0"])
        if kind == "token":
            auth = box_sessions.CCGAuth(client_id="cid", client_secret="very-secret", enterprise_id="42")
        else:
            auth = box_sessions.DeveloperTokenAuth("dev-token")
        retry = box_sessions.RetryPolicy(max_attempts=1, total_timeout=60)
        before = peak_mb()
        async with box_sessions.BoxClient(auth, base_url=url, rate_limit=None, retry=retry) as client:
            try:
                result = await client.session_termination.terminate_users_sessions(user_ids=["1"])
            except box_sessions.BoxError as exc:
                result = exc
        print(json.dumps({"outcome": type(result).__name__, "growth_mb": peak_mb() - before}))

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


JSON = {"content-type": "application/json"}
PADDED = b'{"message": "ok", "padding": "'
SHORT = b'{"message": "ok"}'

#: The huge answer to the measured call, by kind: (the path it answers, the answer).
HUGE_ANSWERS: dict[str, tuple[str, Huge]] = {
    "accepted": (USERS, Huge(202, HUGE, prefix=PADDED, headers=JSON)),
    # Declares a small answer, then floods: what follows the declared length is not read.
    "lying_length": (USERS, Huge(202, HUGE, prefix=SHORT, headers=JSON, declared=len(SHORT))),
    # A short content-length beside chunked framing: the chunks frame the body, and flood.
    "length_and_chunked": (
        USERS,
        Huge(202, HUGE, prefix=PADDED, headers={**JSON, "content-length": str(len(SHORT))}, chunked=True),
    ),
    "server_error": (
        USERS,
        Huge(500, HUGE, prefix=b"<html><body>", headers={"content-type": "text/html"}, chunked=True),
    ),
    "token": (TOKEN, Huge(200, HUGE, prefix=b'{"access_token": "', headers=JSON)),
}


def huge_handler(kind: str) -> Handler:
    """Answers the warm-up call normally and the measured one with HUGE bytes."""
    path, huge = HUGE_ANSWERS[kind]

    def handler(request: Request) -> Action:
        if request.path == USERS and request.json()["user_ids"] == ["0"]:
            return accepted()
        if request.path == path:
            return huge
        return Answer(404)

    return handler


@pytest.mark.parametrize(
    ("kind", "outcomes"),
    [
        ("accepted", {"SessionTerminationMessage"}),
        ("lying_length", {"SessionTerminationMessage"}),
        ("length_and_chunked", {"SessionTerminationMessage"}),
        ("server_error", {"ServerError"}),
        ("token", {"AuthenticationError"}),
    ],
    ids=["202", "202-declared-short", "202-length-and-chunked", "500-chunked", "token-answer"],
)
def test_a_huge_answer_does_not_fill_memory(kind: str, outcomes: set[str]) -> None:
    """A 300 MB answer adds well under 80 MB to the peak RSS, and the call ends as that status says."""
    with serve(huge_handler(kind)) as server:
        run = subprocess.run(  # noqa: S603 - our own interpreter running our own script
            [sys.executable, "-c", CLIENT_SCRIPT, server.url, kind],
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout)
    assert result["outcome"] in outcomes
    assert result["growth_mb"] < MAX_GROWTH_MB, f"peak RSS grew by {result['growth_mb']:.0f} MB"


def nested_handler(status: int) -> Handler:
    def handler(request: Request) -> Action:
        if request.path in {TOKEN, USERS}:
            return Answer(status, NESTED, {"content-type": "application/json"})
        return Answer(404)

    return handler


async def test_a_deeply_nested_202_is_still_success() -> None:
    """A 202 whose JSON is nested 10,000 levels deep returns a SessionTerminationMessage."""
    with serve(nested_handler(202)) as server:
        async with BoxClient(DeveloperTokenAuth("dev-token"), base_url=server.url, rate_limit=None) as client:
            message = await asyncio.wait_for(client.session_termination.terminate_users_sessions(user_ids=["1"]), 10)
    assert isinstance(message, SessionTerminationMessage)


async def test_a_deeply_nested_400_raises_bad_request() -> None:
    """A 400 whose JSON is nested 10,000 levels deep raises BadRequestError."""
    with serve(nested_handler(400)) as server:
        async with BoxClient(DeveloperTokenAuth("dev-token"), base_url=server.url, rate_limit=None) as client:
            with pytest.raises(BadRequestError):
                await asyncio.wait_for(client.session_termination.terminate_users_sessions(user_ids=["1"]), 10)


async def test_a_deeply_nested_token_answer_raises_authentication_error(ccg: CCGAuth) -> None:
    """A token answer whose JSON is nested 10,000 levels deep raises AuthenticationError."""
    retry = RetryPolicy(max_attempts=1)
    with serve(nested_handler(200)) as server:
        async with BoxClient(ccg, base_url=server.url, rate_limit=None, retry=retry) as client:
            with pytest.raises(AuthenticationError):
                await asyncio.wait_for(client.session_termination.terminate_users_sessions(user_ids=["1"]), 10)
        assert server.count(USERS) == 0
