"""What the summary says when a job is stopped (how much was not reached, how to finish) and when it is resumed
(what the job has, what earlier runs terminated, what is left), and that the progress bar counts as it does.

Run as a real process against FakeBox on 127.0.0.1; a job is stopped once the fake has terminated some of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import sqlite3
from pathlib import Path

import pytest

from box_sessions.testing import FakeBox

from ..support.cli_process import DEV, run, start, write

IDS = [str(i) for i in range(1, 401)]


async def until_terminated(fake: FakeBox, count: int) -> None:
    """Wait (60 s at most) until the fake has terminated ``count`` user ids: the job is under way."""

    async def poll() -> None:
        while len(fake.terminated["user_ids"]) < count:  # noqa: ASYNC110 - polling the fake's record
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), 60)


def terminated_in(journal: Path) -> set[str]:
    with contextlib.closing(sqlite3.connect(journal)) as db:
        return {row[0] for row in db.execute("SELECT value FROM outcomes WHERE status = 'terminated'")}


async def stop_mid_job(args: list[str], fake: FakeBox, signum: signal.Signals, stdin: bytes = b"") -> tuple[str, str]:
    """Start the command, stop it with ``signum`` once the fake has terminated 50 ids; its stdout and stderr."""
    proc = await start(args, DEV)
    assert proc.stdin is not None
    if stdin:
        proc.stdin.write(stdin)  # and left open: the input streams on
        await proc.stdin.drain()
    await until_terminated(fake, 50)
    proc.send_signal(signum)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 128 + signum, err.decode()
    return out.decode(), err.decode()


def job_args(tmp_path: Path, base_url: str, *extra: str) -> list[str]:
    ids = write(tmp_path / "ids.txt", IDS)
    return [
        "terminate",
        "--user-ids",
        ids,
        "--batch-size",
        "10",
        "--max-concurrency",
        "2",
        *extra,
        "--base-url",
        base_url,
    ]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_a_stopped_job_with_a_journal_says_how_many_inputs_were_not_reached_and_to_resume(
    tmp_path: Path, signum: signal.Signals
) -> None:
    """Stopped mid-job: the summary counts the inputs not reached and says to rerun with the same --journal."""
    fake = FakeBox(latency=0.05)
    journal = tmp_path / "journal.sqlite"
    async with fake.serve() as base_url:
        out, _ = await stop_mid_job(job_args(tmp_path, base_url, "--journal", str(journal)), fake, signum)
    done = len(terminated_in(journal))
    assert f"Terminated {done:,} of {done:,} distinct inputs" in out
    assert f"The job was stopped before its end: {len(IDS) - done:,} of its 400 inputs were not reached" in out
    assert "To finish, run the same command with the same --journal: it sends only what is not terminated yet." in out
    assert done < len(IDS)  # stopped mid-job: the count above is not the whole input


async def test_a_stopped_job_without_a_journal_says_what_to_do_instead(tmp_path: Path) -> None:
    """Stopped without a journal: the count not reached, and to run the same command again; no journal to resume."""
    fake = FakeBox(latency=0.05)
    report = tmp_path / "report.jsonl"
    async with fake.serve() as base_url:
        out, _ = await stop_mid_job(job_args(tmp_path, base_url, "--report", str(report)), fake, signal.SIGTERM)
    done = sum('"terminated"' in line for line in report.read_text().splitlines())
    assert f"The job was stopped before its end: {len(IDS) - done:,} of its 400 inputs were not reached" in out
    assert "To finish, run the same command again with the same input" in out
    assert "same --journal" not in out


async def test_a_stopped_job_reading_stdin_says_the_input_after_the_last_value_read_was_not_reached() -> None:
    """Stopped while stdin streams (no journal): what was read is counted, and the input after it was not reached."""
    fake = FakeBox(latency=0.05)
    async with fake.serve() as base_url:
        args = ["terminate", "--user-ids", "-", "--batch-size", "10", "--max-concurrency", "2", "--base-url", base_url]
        out, _ = await stop_mid_job(args, fake, signal.SIGTERM, stdin="".join(f"{i}\n" for i in IDS).encode())
    match = re.search(r"the input after the ([\d,]+) values it read was not reached", out)
    assert match is not None, out
    assert len(fake.terminated["user_ids"]) <= int(match.group(1).replace(",", "")) <= len(IDS)
    assert "To finish, run the same command again with the same input" in out


async def test_a_resumed_job_says_what_it_has_what_earlier_runs_terminated_and_what_is_left(tmp_path: Path) -> None:
    """Resumed after a stop: the job's inputs, what earlier runs terminated, what this run terminated, the total."""
    fake = FakeBox(latency=0.05)
    journal = tmp_path / "journal.sqlite"
    async with fake.serve() as base_url:
        args = job_args(tmp_path, base_url, "--journal", str(journal))
        await stop_mid_job(args, fake, signal.SIGINT)
        earlier = len(terminated_in(journal))
        code, out, err = await run(args, DEV)
    assert code == 0, err
    left = len(IDS) - earlier
    assert out.startswith(
        f"Resumed: this job has 400 inputs; earlier runs terminated {earlier:,} of them (journal), "
        f"which are not sent again. Terminated {left:,} of {left:,} distinct inputs"
    )
    assert "Earlier runs and this one terminated 400 distinct inputs in all." in out


async def test_a_finished_job_run_again_says_nothing_was_left(tmp_path: Path) -> None:
    """A finished job run again says that earlier runs terminated every input, not "Terminated 0 of N"."""
    fake = FakeBox()
    journal = tmp_path / "journal.sqlite"
    async with fake.serve() as base_url:
        args = ["terminate", "--user-ids", write(tmp_path / "ids.txt", ["1", "2", "3", "2"]), "--journal", str(journal)]
        await run([*args, "--base-url", base_url], DEV)
        code, out, err = await run([*args, "--base-url", base_url], DEV)
    assert code == 0, err
    assert out.startswith(
        "Resumed: earlier runs terminated every one of this job's 4 inputs (journal): nothing was left to send."
    )
    assert "Terminated 0 of" not in out


async def test_on_resume_the_bar_and_the_summary_count_what_the_journal_skipped_alike(tmp_path: Path) -> None:
    """Values the journal skips, repeated in the input: the bar's "skipped (journal)" is the summary's count."""
    fake = FakeBox(users=["1", "2", "3"])  # 4 fails, so that the job is run again
    journal = tmp_path / "journal.sqlite"
    async with fake.serve() as base_url:
        ids = write(tmp_path / "ids.txt", ["1", "2", "3", "1", "2", "3", "4"])
        args = ["terminate", "--user-ids", ids, "--journal", str(journal), "--base-url", base_url]
        await run(args, DEV)
        code, out, err = await run(args, DEV)
    assert code == 1, err
    assert "earlier runs terminated 3 of them (journal)" in out
    assert "3 duplicates dropped" in out
    last_bar = err.splitlines()[-1]
    assert last_bar.startswith("[########################] 7/7 | terminated 0 | skipped (journal) 3 | failed 1")
