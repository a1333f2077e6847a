"""The report and the journal hold the logins of the people being locked out: they are their owner's only.

Run as a real process under a permissive umask, with the modes read back by ``os.stat``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import stat
import sys
from pathlib import Path

import pytest

from box_sessions.testing import FakeBox, LoopbackServer, Reply, Request

from ..support.cli_process import DEV, run, start

UMASKS = [pytest.param(0o022, id="umask-022"), pytest.param(0o000, id="umask-000")]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("umask", UMASKS)
async def test_a_new_report_and_journal_are_created_0600_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    """A report and a journal the command creates are 0600 under a umask of 022, and of 000."""
    fake = FakeBox()
    report, journal = tmp_path / "report.jsonl", tmp_path / "journal.sqlite"
    async with fake.serve() as base_url:
        code, _, err = await run(
            ["terminate", "--user-id", "1", "--report", str(report), "--journal", str(journal), "--base-url", base_url],
            DEV,
            umask=umask,
        )
    assert code == 0, err
    assert (mode(report), mode(journal)) == (0o600, 0o600)
    assert "narrowed" not in err  # nothing existed to narrow


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param(0o644, 0o600, id="0644"),
        pytest.param(0o660, 0o600, id="0660"),
        pytest.param(0o606, 0o600, id="0606"),
        pytest.param(0o600, 0o600, id="0600-kept"),
        pytest.param(0o200, 0o200, id="0200-kept"),
    ],
)
async def test_an_existing_report_keeps_its_mode_narrowed_to_0600_if_wider(
    tmp_path: Path, before: int, after: int
) -> None:
    """An existing report keeps its mode, narrowed to 0600 if wider, with one line on stderr saying so."""
    fake = FakeBox()
    report = tmp_path / "report.jsonl"
    report.write_text("an older report\n")
    report.chmod(before)
    async with fake.serve() as base_url:
        code, _, err = await run(
            ["terminate", "--user-id", "1", "--report", str(report), "--base-url", base_url], DEV, umask=0o000
        )
    assert code == 0, err
    assert mode(report) == after
    notes = [line for line in err.splitlines() if "narrowed" in line]
    if before == after:
        assert notes == []
    else:
        assert notes == [
            (
                f"box-sessions: --report: narrowed {str(report)!r} from mode {before:04o} to {after:04o}: "
                "it holds the logins of the people being locked out"
            )
        ]


async def test_an_existing_journal_wider_than_0600_is_narrowed_with_one_line(tmp_path: Path) -> None:
    """A journal left 0644 (by an older version, or a copy) is narrowed to 0600 on resume, saying so once."""
    fake = FakeBox(users=["1"])
    journal = tmp_path / "journal.sqlite"
    async with fake.serve() as base_url:
        args = ["terminate", "--user-id", "1", "--user-id", "2", "--journal", str(journal), "--base-url", base_url]
        await run(args, DEV, umask=0o022)
        journal.chmod(0o644)
        code, _, err = await run(args, DEV, umask=0o022)
    assert code == 1, err  # user 2 is unknown to the fake, both times
    assert mode(journal) == 0o600
    assert [line for line in err.splitlines() if "narrowed" in line] == [
        (
            f"box-sessions: --journal: narrowed {str(journal)!r} from mode 0644 to 0600: "
            "it holds the logins of the people being locked out"
        )
    ]


async def test_the_journals_side_files_are_private_too(tmp_path: Path) -> None:
    """SQLite's side files of a journal (here a WAL journal's ``-wal`` and ``-shm``) are 0600 while the job runs."""
    fake = FakeBox(users=["1"])
    journal = tmp_path / "journal.sqlite"
    args = ["terminate", "--user-id", "1", "--user-id", "2", "--journal", str(journal)]
    reached, release = asyncio.Event(), asyncio.Event()

    async def held(request: Request) -> Reply:
        if request.path.endswith("/terminate_sessions"):
            reached.set()
            await release.wait()
        return await fake.handle(request)

    async with LoopbackServer(held) as server:
        release.set()
        code, _, err = await run([*args, "--base-url", server.url], DEV, umask=0o022)
        assert code == 1, err  # user 2 failed: the next run sends it again
        with contextlib.closing(sqlite3.connect(journal)) as db:
            db.execute("PRAGMA journal_mode=WAL")  # the mode stays with the file, as a user may set it
        release.clear()
        reached.clear()
        proc = await start([*args, "--base-url", server.url], DEV, umask=0o022)
        try:
            await asyncio.wait_for(reached.wait(), 60)  # the job is sending: its journal is open
            side_files = {suffix: mode(Path(f"{journal}{suffix}")) for suffix in ("-wal", "-shm")}
        finally:
            release.set()
            _, err_bytes = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1, err_bytes.decode()
    assert side_files == {"-wal": 0o600, "-shm": 0o600}


CRASH = """
import os, sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA wal_autocheckpoint=0")
db.execute("INSERT INTO runs (started) VALUES ('a run that crashed')")
os._exit(0)  # no checkpoint, no clean-up: the -wal file stays, as after a crash
"""


async def test_a_side_file_left_by_a_crash_is_narrowed(tmp_path: Path) -> None:
    """A ``-wal`` file a crashed process left readable by others is narrowed with the journal, saying so."""
    fake = FakeBox(users=["1"])
    journal = tmp_path / "journal.sqlite"
    async with fake.serve() as base_url:
        args = ["terminate", "--user-id", "1", "--user-id", "2", "--journal", str(journal), "--base-url", base_url]
        await run(args, DEV)
        crash = await asyncio.create_subprocess_exec(sys.executable, "-c", CRASH, str(journal))
        assert await asyncio.wait_for(crash.wait(), 60) == 0
        wal = Path(f"{journal}-wal")
        assert wal.stat().st_size > 0  # SQLite itself gives an empty one the journal's mode
        wal.chmod(0o644)
        code, _, err = await run(args, DEV)
    assert code == 1, err  # user 2 is unknown to the fake, both times
    assert f"box-sessions: --journal: narrowed {str(wal)!r} from mode 0644 to 0600" in err
    assert not wal.exists() or mode(wal) == 0o600  # SQLite removes it when the job's connection closes


async def test_a_file_refused_as_a_journal_is_left_as_it_was(tmp_path: Path) -> None:
    """A --journal naming some other SQLite database is refused without its mode being touched."""
    database = tmp_path / "inventory.sqlite"
    with contextlib.closing(sqlite3.connect(database)) as db, db:
        db.execute("CREATE TABLE laptops (serial TEXT)")
    database.chmod(0o644)
    code, _, err = await run(
        ["terminate", "--user-id", "1", "--journal", str(database), "--base-url", "http://127.0.0.1:9"], DEV
    )
    assert code == 2
    assert "not a box-sessions journal" in err
    assert "narrowed" not in err
    assert mode(database) == 0o644
