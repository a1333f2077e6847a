"""What the command says is exact: a message names where a bad value came from, and counts of one are singular.

Run as a real process against FakeBox on 127.0.0.1.
"""

from __future__ import annotations

import json

import pytest

from box_sessions.testing import FakeBox, LoopbackServer, Reply, Request

from ..support.cli_process import DEV, run


@pytest.mark.parametrize(
    ("args", "env", "named", "not_named"),
    [
        pytest.param(["--base-url", "http://box.example.com"], {}, "--base-url", "BOX_BASE_URL", id="option"),
        pytest.param([], {"BOX_BASE_URL": "http://box.example.com"}, "BOX_BASE_URL", "--base-url", id="environment"),
        pytest.param(
            ["--base-url", "ftp://box.example.com"],
            {"BOX_BASE_URL": "https://api.box.com"},
            "--base-url",
            "BOX_BASE_URL",
            id="option-over-environment",
        ),
        pytest.param(["--base-url", ""], {}, "--base-url", "BOX_BASE_URL", id="empty-option-is-not-box"),
    ],
)
async def test_a_bad_base_url_is_named_by_where_it_came_from(
    args: list[str], env: dict[str, str], named: str, not_named: str
) -> None:
    """A bad API host is reported as BOX_BASE_URL when it came from there, as --base-url when given as one."""
    code, out, err = await run(["terminate", "--user-id", "1", *args], {**DEV, **env})
    assert code == 2
    assert err.startswith(f"box-sessions: {named} ")
    assert not_named not in err
    assert len(err.splitlines()) == 1
    assert out == ""


async def test_counts_of_one_are_singular() -> None:
    """A job of one user id, one login and a repeat reads "1 user id", "1 login", "1 duplicate", "1 request"."""
    fake = FakeBox()
    async with fake.serve() as base_url:
        code, out, err = await run(
            ["terminate", "--user-id", "1", "--user-id", "1", "--user-login", "a@example.com", "--base-url", base_url],
            DEV,
        )
    assert code == 0, err
    assert out.startswith(
        "Terminated 2 of 2 distinct inputs (1 user id, 1 login, 0 groups); none failed; 1 duplicate dropped. "
        "1 request, 0 retries, 0 answered 429, in "
    )


async def test_one_retry_and_one_429_are_singular() -> None:
    """A single id answered 429 once, then accepted: "1 distinct input", "2 requests, 1 retry, 1 answered 429"."""
    fake = FakeBox()
    answered_429 = False

    async def once_429(request: Request) -> Reply:
        nonlocal answered_429
        if request.path.endswith("/terminate_sessions") and not answered_429:
            answered_429 = True
            body = {
                "type": "error",
                "status": 429,
                "code": "rate_limit_exceeded",
                "message": "Request rate limit exceeded",
            }
            return Reply(429, json.dumps(body).encode(), {"content-type": "application/json", "retry-after": "0"})
        return await fake.handle(request)

    async with LoopbackServer(once_429) as server:
        code, out, err = await run(["terminate", "--user-id", "1", "--base-url", server.url], DEV)
    assert code == 0, err
    assert out.startswith("Terminated 1 of 1 distinct input (1 user id, 0 logins, 0 groups); none failed; ")
    assert "0 duplicates dropped. 2 requests, 1 retry, 1 answered 429, in " in out


def test_the_demos_counts_of_one_are_singular() -> None:
    """The demo's closing line says "1 answer 429", "1 dropped connection" and "1 stalled answer" for counts of one."""
    from box_sessions._cli._fake import absorbed  # noqa: PLC0415 - the demo's wording, tested without its 10 s run

    fake = FakeBox()
    fake.status_counts.update({429: 1, 503: 1, 202: 3})
    fake.faults.update({"drop": 1, "stall": 1})
    line = absorbed(fake)
    assert line.startswith("Absorbed on the way: 1 answer 429, 1 answer 5xx, 1 dropped connection, 1 stalled answer ")
