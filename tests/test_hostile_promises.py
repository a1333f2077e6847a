"""Issue 10, smaller promises: what the report says about invalid input, base URLs with a path, one
event loop per client, and a progress callback that raises."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import textwrap

import pytest

from box_sessions import (
    BoxClient,
    CCGAuth,
    DeveloperTokenAuth,
    Progress,
    SessionTerminationMessage,
    TerminationReport,
)

from .support.hostile import Action, Answer, Request, accepted, serve, token_answer

USERS = "/2.0/users/terminate_sessions"


def answer_at_once(request: Request) -> Action:
    return accepted()


async def test_report_is_not_ok_when_only_invalid_values_failed() -> None:
    """A job where every valid id was terminated but one value was invalid reports ok=False."""
    with serve(answer_at_once) as server:
        async with BoxClient(DeveloperTokenAuth("dev-token"), base_url=server.url, rate_limit=None) as client:
            report = await asyncio.wait_for(client.session_termination.terminate(user_ids=["1", "not-an-id"]), 10)
    assert report.terminated["user_ids"] == ["1"]
    assert [failure.value for failure in report.failed] == ["not-an-id"]
    assert report.ok is False


async def test_a_repeated_invalid_value_fails_once_and_counts_as_duplicates() -> None:
    """An invalid value given three times is one failure and two duplicates."""
    with serve(answer_at_once) as server:
        async with BoxClient(DeveloperTokenAuth("dev-token"), base_url=server.url, rate_limit=None) as client:
            report = await asyncio.wait_for(
                client.session_termination.terminate(user_ids=["1", "abc", "abc", "abc"]), 10
            )
    assert [failure.value for failure in report.failed] == ["abc"]
    assert report.duplicates == 2


async def test_a_base_url_with_a_path_prefixes_the_token_and_api_paths() -> None:
    """base_url=".../box": the token request goes to /box/oauth2/token and the call to /box/2.0/..."""

    def handler(request: Request) -> Action:
        if request.path == "/box/oauth2/token":
            return token_answer("acc3ss-1")
        if request.path == "/box" + USERS:
            return accepted()
        return Answer(404)

    auth = CCGAuth(client_id="cid", client_secret="very-secret", enterprise_id="42")
    with serve(handler) as server:
        async with BoxClient(auth, base_url=server.url + "/box", rate_limit=None) as client:
            message = await asyncio.wait_for(client.session_termination.terminate_users_sessions(user_ids=["1"]), 10)
        paths = [request.path for request in server.requests()]
    assert isinstance(message, SessionTerminationMessage)
    assert paths == ["/box/oauth2/token", "/box" + USERS]


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
    with serve(answer_at_once) as server:
        run = subprocess.run(  # noqa: S603 - our own interpreter running our own script
            [sys.executable, "-c", OTHER_LOOP_SCRIPT, server.url],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        sent = server.count(USERS)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout)
    for outcome in result["outcomes"]:
        assert outcome is not None, result
        assert outcome["type"] == "RuntimeError", result
        assert re.search(r"client", outcome["message"], re.IGNORECASE), result
        assert re.search(r"(another|different|other) event loop", outcome["message"]), result
    assert sent == 1
    assert result["close_error"] is None


class InterruptError(Exception):
    """What the progress callback raises."""


async def test_an_exception_from_on_progress_keeps_what_box_accepted() -> None:
    """An exception raised by on_progress propagates with the report so far as its termination_report.

    The chosen design: `terminate` re-raises the callback's own exception (not a wrapper), with
    the `TerminationReport` so far attached as the attribute ``termination_report``, in which
    every id Box accepted is listed as terminated.
    """
    ids = [str(1000 + i) for i in range(50)]
    seen: list[Progress] = []

    def on_progress(progress: Progress) -> None:
        seen.append(progress)
        if len(seen) == 2:
            raise InterruptError("stop after the second batch")

    with serve(answer_at_once) as server:
        async with BoxClient(DeveloperTokenAuth("dev-token"), base_url=server.url, rate_limit=None) as client:
            with pytest.raises(InterruptError) as raised:
                await asyncio.wait_for(
                    client.session_termination.terminate(
                        user_ids=ids, batch_size=10, max_concurrency=1, on_progress=on_progress
                    ),
                    10,
                )
        accepted_ids = [user_id for request in server.requests(USERS) for user_id in request.json()["user_ids"]]
    assert accepted_ids == ids[:20]  # one batch at a time: the third was never sent
    report = getattr(raised.value, "termination_report", None)
    assert isinstance(report, TerminationReport)
    assert sorted(report.terminated["user_ids"]) == sorted(accepted_ids)
