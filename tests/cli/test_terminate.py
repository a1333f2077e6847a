"""The box-sessions command line, run as a real process against FakeBox on 127.0.0.1.

Tests of what the command leaves open run it in this process, where an unclosed file or database shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import json
import os
import signal
import sqlite3
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from box_sessions import __version__
from box_sessions._cli import main
from box_sessions.testing import FakeBox

from ..support.cli_process import DEV, run, start, write


async def test_version() -> None:
    """--version prints the package version."""
    code, out, _ = await run(["--version"])
    assert (code, out.strip()) == (0, f"box-sessions {__version__}")


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        pytest.param([], {}, "required: COMMAND", id="no-command"),
        pytest.param(["terminate"], DEV, "nothing to terminate", id="no-input"),
        pytest.param(["terminate", "--user-id", "1"], {}, "no credentials", id="no-credentials"),
        pytest.param(
            ["terminate", "--user-id", "1"], {**DEV, "BOX_CLIENT_ID": "x"}, "not both", id="two-kinds-of-credentials"
        ),
        pytest.param(
            ["terminate", "--user-id", "1"],
            {"BOX_CLIENT_ID": "x", "BOX_CLIENT_SECRET": "y"},
            "exactly one of BOX_ENTERPRISE_ID",
            id="ccg-without-subject",
        ),
        pytest.param(["terminate", "--user-id", "1"], {"BOX_CLIENT_ID": "x"}, "must both be set", id="ccg-no-secret"),
        pytest.param(["terminate", "--user-ids", "/nonexistent/ids.txt"], DEV, "cannot read", id="missing-file"),
        pytest.param(["terminate", "--user-id", "1", "--batch-size", "0"], DEV, "must be at least 1", id="batch-0"),
        pytest.param(["terminate", "--user-id", "1", "--rate", "fast"], DEV, "expected a number", id="bad-rate"),
        pytest.param(
            ["terminate", "--user-id", "1", "--base-url", "http://box.example.com"], DEV, "plain http", id="http-url"
        ),
        pytest.param(
            ["terminate", "--user-ids", "-", "--group-ids", "-"],
            DEV,
            "only one input can be read from stdin",
            id="2x-stdin",
        ),
    ],
)
async def test_usage_and_credential_errors_exit_2(args: list[str], env: dict[str, str], message: str) -> None:
    """Usage and credential mistakes exit 2 with one sentence on stderr and no traceback."""
    code, out, err = await run(args, env)
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    assert out == ""


async def test_terminate_from_files_stdin_and_flags(tmp_path: Path) -> None:
    """Files, stdin and repeated flags are read; blank lines and # comments skipped; exit 0."""
    fake = FakeBox()
    ids = write(tmp_path / "ids.txt", ["# incident 42", "101", "", "102  # the intern", "103"])
    groups = write(tmp_path / "groups.txt", ["7"])
    async with fake.serve() as base_url:
        code, out, err = await run(
            [
                "terminate",
                "--user-ids",
                ids,
                "--user-logins",
                "-",
                "--group-ids",
                groups,
                "--user-id",
                "100",
                "--group-id",
                "8",
                "--base-url",
                base_url,
            ],
            DEV,
            stdin="a@example.com\nb@example.com\n",
        )
    assert code == 0, err
    assert sorted(fake.terminated["user_ids"]) == ["100", "101", "102", "103"]
    assert fake.terminated["user_logins"] == ["a@example.com", "b@example.com"]
    assert sorted(fake.terminated["group_ids"]) == ["7", "8"]
    assert out.startswith("Terminated 8 of 8 distinct inputs (4 user ids, 2 logins, 2 groups); none failed")
    assert "terminated" in err  # a progress line, as stderr is not a terminal


async def test_report_file_and_exit_1_when_some_fail(tmp_path: Path) -> None:
    """--report writes one JSON line per input value; unknown and invalid ids fail; exit 1."""
    fake = FakeBox(users=["1", "2", "3"])
    report = tmp_path / "report.jsonl"
    async with fake.serve() as base_url:
        code, out, _ = await run(
            [
                "terminate",
                "--user-id",
                "1",
                "--user-id",
                "2",
                "--user-id",
                "3",
                "--user-id",
                "4",
                "--user-id",
                "x",
                "--report",
                str(report),
                "--base-url",
                base_url,
                "--rate",
                "0",
            ],
            DEV,
        )
    assert code == 1
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    by_value = {line["value"]: line for line in lines}
    assert sorted(by_value) == ["1", "2", "3", "4", "x"]
    assert {v: by_value[v]["status"] for v in by_value} == {
        "1": "terminated",
        "2": "terminated",
        "3": "terminated",
        "4": "failed",
        "x": "failed",
    }
    assert "User not found" in by_value["4"]["error"]
    assert "2 failed (1 NotFoundError, 1 invalid input)" in out


async def test_ccg_credentials_from_environment() -> None:
    """BOX_CLIENT_ID, BOX_CLIENT_SECRET and BOX_ENTERPRISE_ID authenticate with CCG."""
    fake = FakeBox()
    env = {"BOX_CLIENT_ID": fake.client_id, "BOX_CLIENT_SECRET": fake.client_secret, "BOX_ENTERPRISE_ID": "1"}
    async with fake.serve() as base_url:
        code, _, err = await run(["terminate", "--group-id", "5", "--base-url", base_url], env)
    assert code == 0, err
    assert fake.token_requests == 1
    assert fake.client_secret not in err


async def test_forbidden_stops_with_exit_1() -> None:
    """A 403 stops the job: exit 1 and one sentence saying why."""
    fake = FakeBox(forbidden=True)
    async with fake.serve() as base_url:
        code, out, err = await run(["terminate", "--user-id", "1", "--user-id", "2", "--base-url", base_url], DEV)
    assert code == 1
    assert "stopped early: 403 access_denied_insufficient_permissions" in err
    assert "2 failed (2 PermissionDeniedError)" in out
    assert "Traceback" not in err


async def test_batch_size_concurrency_and_rate_options() -> None:
    """--batch-size caps ids per request; --max-concurrency and --rate are accepted and honoured."""
    fake = FakeBox()
    async with fake.serve() as base_url:
        code, _, err = await run(
            [
                "terminate",
                *(a for i in range(20) for a in ("--user-id", str(i))),
                "--batch-size",
                "6",
                "--max-concurrency",
                "1",
                "--rate",
                "6000",
                "--base-url",
                base_url,
            ],
            DEV,
        )
    assert code == 0, err
    assert [len(r.body["user_ids"]) for r in fake.api_requests()] == [6, 6, 6, 2]


async def test_journal_resume_after_kill(tmp_path: Path) -> None:
    """Killed mid-job and rerun: every id ends terminated and no batch the journal recorded is sent again."""
    fake = FakeBox(latency=0.05)
    ids = [str(i) for i in range(1, 1001)]
    ids_file = write(tmp_path / "ids.txt", ids)
    journal = tmp_path / "journal.sqlite"
    async with fake.serve() as base_url:
        args = ["terminate", "--user-ids", ids_file, "--batch-size", "20", "--max-concurrency", "2"]
        args += ["--rate", "600", "--journal", str(journal), "--base-url", base_url]
        proc = await start(args, DEV)
        recorded = 0
        for _ in range(600):
            await asyncio.sleep(0.02)
            if journal.exists():
                with (
                    contextlib.closing(sqlite3.connect(journal)) as db,
                    contextlib.suppress(sqlite3.OperationalError),
                ):  # not created yet
                    recorded = db.execute("SELECT COUNT(*) FROM outcomes WHERE status = 'terminated'").fetchone()[0]
            if recorded >= 100:
                break
        proc.kill()
        await proc.wait()
        assert 100 <= recorded < len(ids), "the first run should be killed mid-job"
        with contextlib.closing(sqlite3.connect(journal)) as db:
            done = {row[0] for row in db.execute("SELECT value FROM outcomes WHERE status = 'terminated'")}
        first_run = len(fake.api_requests())
        code, out, err = await run(args, DEV)
    assert code == 0, err
    second_run = fake.api_requests()[first_run:]
    resent = {v for r in second_run for v in r.body["user_ids"]} & done
    assert resent == set()
    assert set(fake.terminated["user_ids"]) == set(ids)
    assert f"earlier runs terminated {len(done):,} of them (journal)" in out
    assert f"Earlier runs and this one terminated {len(ids):,} distinct inputs in all." in out


async def test_fake_server_command(tmp_path: Path) -> None:
    """`box-sessions fake-server` serves FakeBox on loopback until interrupted."""
    known = write(tmp_path / "users.txt", ["1"])
    proc = await start(["fake-server", "--rate-limit", "6000", "--known-users", known, "--latency", "0.01"])
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
    base_url = line.rsplit(" ", 1)[-1].strip()
    assert base_url.startswith("http://127.0.0.1:")
    code, out, _ = await run(["terminate", "--user-id", "1", "--user-id", "2", "--base-url", base_url], DEV)
    proc.send_signal(signal.SIGINT)
    await asyncio.wait_for(proc.wait(), 30)
    assert proc.returncode == 0
    assert code == 1
    assert "1 NotFoundError" in out


async def test_demo_runs_and_accounts_for_everything() -> None:
    """`box-sessions demo` terminates every valid id once through the real client, and exits 0."""
    code, out, err = await run(["demo"], timeout=120)
    assert code == 0, err
    assert "Terminated 6,050 of 6,053 distinct inputs" in out
    assert "3 invalid input" in out
    assert "each once: yes" in out


@pytest.fixture
def sqlite_connections(monkeypatch: pytest.MonkeyPatch) -> list[sqlite3.Connection]:
    """Every SQLite connection opened while the test runs, to check that each was closed."""
    opened: list[sqlite3.Connection] = []
    connect = sqlite3.connect

    def tracking_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        db: sqlite3.Connection = connect(*args, **kwargs)
        opened.append(db)
        return db

    monkeypatch.setattr(sqlite3, "connect", tracking_connect)
    return opened


def is_closed(db: sqlite3.Connection) -> bool:
    try:
        db.execute("SELECT 1")
    except sqlite3.ProgrammingError:  # "Cannot operate on a closed database."
        return True
    return False


def run_in_process(
    monkeypatch: pytest.MonkeyPatch, args: Sequence[str], env: dict[str, str]
) -> tuple[int, str, list[str]]:
    """Run the command here with only `env` of BOX_*; return its status, stderr and unclosed-resource warnings."""
    for key in [key for key in os.environ if key.startswith("BOX_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    err = io.StringIO()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stderr(err):
        warnings.simplefilter("always")
        code = main(args)
        gc.collect()  # anything the command dropped unclosed warns now, inside this block
    return code, err.getvalue(), [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]


def test_journal_that_is_not_a_database_exits_2_and_is_closed(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sqlite_connections: list[sqlite3.Connection],
) -> None:
    """A --journal file that is not an SQLite database exits 2 and leaves its connection closed."""
    journal = write(tmp_path / "notes.txt", ["these are notes, not a journal"] * 50)
    code, err, unclosed = run_in_process(monkeypatch, ["terminate", "--user-id", "1", "--journal", journal], DEV)
    assert code == 2
    assert "--journal: cannot use" in err
    assert len(sqlite_connections) == 1
    assert is_closed(sqlite_connections[0])
    assert unclosed == []


def test_usage_error_after_journal_and_report_are_open_closes_both(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sqlite_connections: list[sqlite3.Connection],
) -> None:
    """A usage error found once the journal and the report file are open (a full disk) exits 2 and closes both."""
    args = ["terminate", "--user-id", "1", "--journal", str(tmp_path / "journal.sqlite")]
    args += ["--report", "/dev/full", "--base-url", "http://127.0.0.1:9"]
    code, err, unclosed = run_in_process(monkeypatch, args, DEV)
    assert code == 2
    assert "--report: cannot write '/dev/full'" in err
    assert len(sqlite_connections) == 1
    assert is_closed(sqlite_connections[0])
    assert unclosed == []  # the report file


@pytest.mark.parametrize(
    ("extra_args", "env", "message"),
    [
        pytest.param(["--group-ids", "/nonexistent/groups.txt"], DEV, "cannot read", id="a-later-file-is-missing"),
        pytest.param([], {}, "no credentials", id="no-credentials"),
    ],
)
def test_usage_error_after_input_files_are_open_closes_them(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    extra_args: list[str],
    env: dict[str, str],
    message: str,
) -> None:
    """A usage error found once input files are open exits 2 and leaves none of them open."""
    ids = write(tmp_path / "ids.txt", ["1", "2"])
    code, err, unclosed = run_in_process(monkeypatch, ["terminate", "--user-ids", ids, *extra_args], env)
    assert code == 2
    assert message in err
    assert unclosed == []
