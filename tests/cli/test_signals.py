"""Ctrl-C and SIGTERM stop a job the same way, and refused credentials are a credential error: the
command's exit statuses, run as a real process against FakeBox on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sqlite3
from pathlib import Path

import pytest

from box_sessions.testing import FakeBox

from ..support.cli_process import DEV, run, start, write


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
async def test_a_signal_mid_job_stops_it_prints_the_summary_and_keeps_the_journal(
    tmp_path: Path, signum: signal.Signals, status: int
) -> None:
    """SIGINT and SIGTERM mid-job: sending stops, the summary is printed, the journal holds only what Box
    accepted, the exit status is 128 + the signal, and the same command then finishes the job."""
    fake = FakeBox(latency=0.05)
    ids = [str(i) for i in range(1, 401)]
    journal = tmp_path / "journal.sqlite"
    async with fake.serve() as base_url:
        args = ["terminate", "--user-ids", write(tmp_path / "ids.txt", ids), "--batch-size", "10"]
        args += ["--max-concurrency", "2", "--rate", "600", "--journal", str(journal), "--base-url", base_url]
        proc = await start(args, DEV)
        while len(fake.terminated["user_ids"]) < 50:  # noqa: ASYNC110 - polling the fake's record
            await asyncio.sleep(0.02)
        proc.send_signal(signum)
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == status
        assert out.decode().startswith("Terminated ")
        assert "stopped before its end" in out.decode()
        assert f"box-sessions: interrupted by {signum.name}" in err.decode()
        assert "Traceback" not in err.decode()
        sent_when_stopped = len(fake.api_requests())
        await asyncio.sleep(0.3)
        assert len(fake.api_requests()) == sent_when_stopped  # nothing more is sent
        assert len(fake.terminated["user_ids"]) < len(ids)
        with contextlib.closing(sqlite3.connect(journal)) as db:
            done = {row[0] for row in db.execute("SELECT value FROM outcomes WHERE status = 'terminated'")}
        assert done <= set(fake.terminated["user_ids"])
        code, _, err2 = await run(args, DEV)
    assert code == 0, err2
    assert set(fake.terminated["user_ids"]) == set(ids)


async def test_sigterm_with_json_says_so_in_stopped_by(tmp_path: Path) -> None:
    """--json after SIGTERM: one JSON object with ok false and stopped_by naming the signal; exit 143."""
    fake = FakeBox(latency=0.05)
    async with fake.serve() as base_url:
        args = ["terminate", "--user-ids", write(tmp_path / "ids.txt", range(1, 401)), "--batch-size", "10"]
        args += ["--max-concurrency", "2", "--json", "--base-url", base_url]
        proc = await start(args, DEV)
        # Six batches received means at least four answered first (two in flight at most): the
        # command has taken at least two batches' results, whatever the machine's load.
        while len(fake.terminated["user_ids"]) < 60:  # noqa: ASYNC110 - polling the fake's record
            await asyncio.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 143
    summary = json.loads(out)
    assert summary["ok"] is False
    assert summary["stopped_by"] == "interrupted by SIGTERM"
    assert summary["terminated"]["user_ids"] >= 20


@pytest.mark.parametrize("kind", ["wrong-client-secret", "wrong-developer-token"])
async def test_credentials_box_refuses_exit_2(kind: str) -> None:
    """Credentials the token endpoint (or Box) refuses exit 2 with one sentence saying so, the secret unshown."""
    fake = FakeBox()
    env = (
        {"BOX_CLIENT_ID": fake.client_id, "BOX_CLIENT_SECRET": "not-the-secret", "BOX_ENTERPRISE_ID": "1"}
        if kind == "wrong-client-secret"
        else {"BOX_DEVELOPER_TOKEN": "not-the-token"}
    )
    async with fake.serve() as base_url:
        code, out, err = await run(["terminate", "--user-id", "1", "--user-id", "2", "--base-url", base_url], env)
    assert code == 2
    assert "box-sessions: Box refused the credentials" in err
    assert "Traceback" not in err
    assert "not-the-secret" not in out + err
    assert "not-the-token" not in out + err
    assert fake.terminated["user_ids"] == []
