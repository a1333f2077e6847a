"""What the command tells a person and a pipeline: the summary, ``--json``, ``--report -`` and the exit
status, run as a real process against FakeBox on 127.0.0.1."""

from __future__ import annotations

import socket

from box_sessions.testing import FakeBox

from .cli_process import DEV, run


async def test_summary_names_each_failure_reason_with_a_sample_message() -> None:
    """The summary quotes one message per kind of failure, so the cause is on screen, not only in the report."""
    fake = FakeBox(users=["1"])
    async with fake.serve() as base_url:
        code, out, _ = await run(
            ["terminate", "--user-id", "1", "--user-id", "2", "--user-id", "x", "--base-url", base_url], DEV
        )
    assert code == 1
    assert "2 failed (1 NotFoundError, 1 invalid input)" in out
    assert 'NotFoundError: "404 not_found: User not found' in out
    assert "invalid input: \"user_ids: an id must be a string of digits, got 'x'\"" in out


async def test_summary_says_box_runs_the_terminations_asynchronously() -> None:
    """The summary says what a 202 means: Box accepted jobs it runs later, and points at the admin events."""
    fake = FakeBox()
    async with fake.serve() as base_url:
        code, out, _ = await run(["terminate", "--user-id", "1", "--base-url", base_url], DEV)
    assert code == 0
    assert "asynchronous" in out
    assert "admin events" in out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_connection_failure_is_explained_in_the_summary() -> None:
    """A connection failure is named with its cause in the summary, not only counted as a class name."""
    base_url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    code, out, _ = await run(["terminate", "--user-id", "1", "--base-url", base_url, "--rate", "0"], DEV, timeout=90)
    assert code == 1
    assert "1 failed (1 BoxConnectionError)" in out
    assert 'BoxConnectionError: "' in out
    assert "onnect" in out.split('BoxConnectionError: "', 1)[1]
