"""``--dry-run``: the batches a job would send, as JSON lines on stdout that ``jq`` can read; nothing sent.

Run as a real process.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

from ..support.cli_process import run, start, write


async def test_dry_run_sends_nothing(tmp_path: Path) -> None:
    """--dry-run prints the batches, needs no credentials and sends nothing."""
    ids = write(tmp_path / "ids.txt", [*range(1, 8), 3, "bad"])
    code, out, err = await run(["terminate", "--user-ids", ids, "--group-id", "9", "--batch-size", "3", "--dry-run"])
    rows = [json.loads(line) for line in out.splitlines()]
    batches = [row for row in rows if "batch" in row]
    assert [b["body"] for b in batches] == [
        {"user_ids": ["1", "2", "3"], "user_logins": []},
        {"user_ids": ["4", "5", "6"], "user_logins": []},
        {"user_ids": ["7"], "user_logins": []},
        {"group_ids": ["9"]},
    ]
    assert batches[-1]["endpoint"] == "/2.0/groups/terminate_sessions"
    assert [row["invalid"]["value"] for row in rows if "invalid" in row] == ["bad"]
    assert err.splitlines()[-1] == "Dry run: 4 batches, 8 ids, 1 invalid, 1 duplicate; nothing sent."
    assert code == 1  # one input is invalid


async def test_dry_run_writes_only_json_lines_to_stdout(tmp_path: Path) -> None:
    """--dry-run's stdout is JSON lines only, so that jq reads it; its summary goes to stderr."""
    ids = write(tmp_path / "ids.txt", ["1", "2", "2"])
    code, out, err = await run(["terminate", "--user-ids", ids, "--dry-run"])
    assert code == 0, err
    assert [json.loads(line)["body"]["user_ids"] for line in out.splitlines()] == [["1", "2"]]
    assert err == "Dry run: 1 batch, 2 ids, 0 invalid, 1 duplicate; nothing sent.\n"


async def test_dry_run_with_json_ends_with_one_json_object(tmp_path: Path) -> None:
    """--dry-run --json: the planned batches, then one JSON object with the plan's counts; nothing sent."""
    ids = write(tmp_path / "ids.txt", ["1", "2", "2", "x"])
    code, out, err = await run(["terminate", "--user-ids", ids, "--dry-run", "--json"])
    *_, last = (json.loads(line) for line in out.splitlines())
    assert last == {"dry_run": True, "ok": False, "batches": 1, "ids": 2, "invalid": 1, "duplicates": 1}
    assert err == ""
    assert code == 1


async def test_sigterm_during_a_dry_run_does_not_speak_of_a_journal(tmp_path: Path) -> None:
    """SIGTERM while a dry run reads its input exits 143 saying so, without telling it to resume a journal."""
    fifo = tmp_path / "ids.fifo"
    os.mkfifo(fifo)
    proc = await start(["terminate", "--user-ids", str(fifo), "--dry-run"])
    # Opening the pipe for writing returns once the command has opened it to read: it is reading its input.
    writer = await asyncio.wait_for(asyncio.to_thread(fifo.open, "w"), 60)
    try:
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        writer.close()
    assert proc.returncode == 143
    assert err.decode() == "box-sessions: interrupted by SIGTERM\n"
    assert out == b""
