"""What the command tells a person and a pipeline: the summary, ``--json``, ``--report -`` and the exit
status, run as a real process against FakeBox on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sqlite3
from pathlib import Path

from box_sessions.testing import FakeBox

from ..support.cli_process import DEV, run


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


async def test_report_dash_writes_the_json_lines_to_stdout(tmp_path: Path) -> None:
    """--report - writes the report's JSON lines to stdout (no file named '-'); the summary goes to stderr."""
    fake = FakeBox(users=["1"])
    async with fake.serve() as base_url:
        code, out, err = await run(
            ["terminate", "--user-id", "1", "--user-id", "2", "--report", "-", "--base-url", base_url], DEV
        )
    assert code == 1
    rows = [json.loads(line) for line in out.splitlines()]
    assert sorted((row["value"], row["status"]) for row in rows) == [("1", "terminated"), ("2", "failed")]
    assert "Terminated 1 of 2 distinct inputs" in err
    assert not (Path.cwd() / "-").exists()


async def test_json_ends_the_run_with_one_json_object() -> None:
    """--json prints one JSON object on stdout instead of the paragraph, with counts per field and per failure."""
    fake = FakeBox(users=["1", "2"])
    async with fake.serve() as base_url:
        code, out, err = await run(
            [
                "terminate",
                *("--user-id", "1", "--user-id", "2", "--user-id", "2", "--user-id", "3", "--user-id", "x"),
                *("--group-id", "7", "--json", "--base-url", base_url),
            ],
            DEV,
        )
    assert code == 1, err
    summary = json.loads(out)
    assert summary["ok"] is False
    assert summary["terminated"] == {"user_ids": 2, "user_logins": 0, "group_ids": 1}
    assert summary["failed"] == 2
    assert summary["failures"] == {"NotFoundError": 1, "invalid input": 1}
    assert summary["duplicates"] == 1
    assert summary["requests"] >= 2
    assert summary["rate_limited"] == 0
    assert summary["elapsed_seconds"] >= 0
    assert summary["stopped_by"] is None
    assert "Terminated" not in out + err


async def test_json_with_the_report_on_stdout_ends_with_the_summary_object() -> None:
    """--report - with --json: the report's lines, then the summary object as stdout's last line."""
    fake = FakeBox()
    async with fake.serve() as base_url:
        code, out, err = await run(
            ["terminate", "--user-id", "1", "--report", "-", "--json", "--base-url", base_url], DEV
        )
    assert code == 0, err
    *rows, last = (json.loads(line) for line in out.splitlines())
    assert [row["value"] for row in rows] == ["1"]
    assert last["ok"] is True


async def test_box_base_url_sets_the_default_api_host() -> None:
    """BOX_BASE_URL points the command at another API host without --base-url."""
    fake = FakeBox()
    async with fake.serve() as base_url:
        code, _, err = await run(["terminate", "--user-id", "1"], {**DEV, "BOX_BASE_URL": base_url})
    assert code == 0, err
    assert fake.terminated["user_ids"] == ["1"]


async def test_an_unwritable_report_is_a_usage_error_before_anything_is_sent() -> None:
    """--report /dev/full exits 2 with one sentence, no traceback, and nothing sent."""
    fake = FakeBox()
    async with fake.serve() as base_url:
        code, out, err = await run(
            ["terminate", "--user-id", "1", "--report", "/dev/full", "--base-url", base_url], DEV
        )
    assert code == 2
    assert err == "box-sessions: --report: cannot write '/dev/full': No space left on device\n"
    assert out == ""
    assert fake.requests == []


async def test_a_report_that_fails_mid_job_stops_it_with_one_sentence(tmp_path: Path) -> None:
    """A report whose reader goes away mid-job stops the job: summary, one sentence, exit 2, journal consistent."""
    fake = FakeBox(latency=0.05)
    fifo, journal = tmp_path / "report.fifo", tmp_path / "journal.sqlite"
    os.mkfifo(fifo)

    def read_one_line_and_leave() -> str:
        with fifo.open(encoding="utf-8") as reader:
            return reader.readline()

    first = asyncio.get_running_loop().run_in_executor(None, read_one_line_and_leave)
    ids = [str(i) for i in range(1, 41)]
    async with fake.serve() as base_url:
        args = ["terminate", *(a for i in ids for a in ("--user-id", i)), "--batch-size", "1"]
        args += ["--max-concurrency", "1", "--report", str(fifo), "--journal", str(journal), "--base-url", base_url]
        code, out, err = await run(args, DEV)
    assert json.loads(await first)["status"] == "terminated"
    assert code == 2
    assert f"box-sessions: --report: cannot write {str(fifo)!r} any more" in err
    assert "Traceback" not in err
    assert out.startswith("Terminated ")
    assert len(fake.terminated["user_ids"]) < len(ids)  # the job stopped sending
    with contextlib.closing(sqlite3.connect(journal)) as db:
        recorded = {row[0] for row in db.execute("SELECT value FROM outcomes WHERE status = 'terminated'")}
    assert recorded <= set(fake.terminated["user_ids"])
