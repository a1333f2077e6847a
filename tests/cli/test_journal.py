"""The journal belongs to one job: reused for another it is refused before anything is sent; the same job
resumes; a journal that cannot be written is found first. Run as a real process against FakeBox."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from box_sessions.testing import FakeBox

from ..support.cli_process import DEV, run, write


def terminated_in(journal: Path) -> set[str]:
    with contextlib.closing(sqlite3.connect(journal)) as db:
        return {row[0] for row in db.execute("SELECT value FROM outcomes WHERE status = 'terminated'")}


async def test_a_journal_of_another_job_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    """Incident A's journal with incident B's list exits 2 naming the journal; B's users are not skipped."""
    fake = FakeBox()
    journal = tmp_path / "incident-a.sqlite"
    async with fake.serve() as base_url:
        incident_a = write(tmp_path / "a.txt", ["1", "2", "3"])
        code, _, err = await run(
            ["terminate", "--user-ids", incident_a, "--journal", str(journal), "--base-url", base_url], DEV
        )
        assert code == 0, err
        sent_for_a = len(fake.requests)
        incident_b = write(tmp_path / "b.txt", ["2", "3", "4"])  # 2 and 3 are compromised again
        code, out, err = await run(
            ["terminate", "--user-ids", incident_b, "--journal", str(journal), "--base-url", base_url], DEV
        )
    assert code == 2
    assert f"--journal: {str(journal)!r} belongs to another job (not the same inputs)" in err
    assert "give a new journal file" in err
    assert len(err.splitlines()) == 1
    assert "already terminated" not in out + err
    assert len(fake.requests) == sent_for_a  # nothing was sent for incident B


@pytest.mark.parametrize("change", ["base_url", "credentials"])
async def test_a_journal_of_another_host_or_account_is_refused(tmp_path: Path, change: str) -> None:
    """The same list against another API host, or with other credentials, is another job: exit 2."""
    fake, other = FakeBox(), FakeBox()
    journal = tmp_path / "journal.sqlite"
    ids = write(tmp_path / "ids.txt", ["1", "2"])
    async with fake.serve() as base_url, other.serve() as other_url:
        args = ["terminate", "--user-ids", ids, "--journal", str(journal)]
        code, _, err = await run([*args, "--base-url", base_url], DEV)
        assert code == 0, err
        env = {"BOX_DEVELOPER_TOKEN": "another-token"} if change == "credentials" else DEV
        code, _, err = await run([*args, "--base-url", other_url if change == "base_url" else base_url], env)
    assert code == 2
    assert f"(not the same {'base URL' if change == 'base_url' else 'credentials'})" in err
    assert "another-token" not in err
    assert other.requests == []


async def test_an_older_journal_without_its_job_is_refused(tmp_path: Path) -> None:
    """A journal written before journals named their job cannot prove it is this job's: exit 2."""
    journal = tmp_path / "old.sqlite"
    with contextlib.closing(sqlite3.connect(journal)) as db, db:
        db.execute(
            "CREATE TABLE outcomes (field TEXT, value TEXT, status TEXT, error TEXT, PRIMARY KEY (field, value))"
        )
        db.execute("INSERT INTO outcomes VALUES ('user_ids', '1', 'terminated', NULL)")
    fake = FakeBox()
    async with fake.serve() as base_url:
        code, _, err = await run(
            ["terminate", "--user-id", "1", "--journal", str(journal), "--base-url", base_url], DEV
        )
    assert code == 2
    assert "does not say which job it belongs to" in err
    assert fake.requests == []


async def test_an_unrelated_sqlite_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    """--journal naming some other SQLite database exits 2 with one sentence, and adds no table to it."""
    database = tmp_path / "inventory.sqlite"
    with contextlib.closing(sqlite3.connect(database)) as db, db:
        db.execute("CREATE TABLE laptops (serial TEXT)")
    before = database.read_bytes()
    code, out, err = await run(
        ["terminate", "--user-id", "1", "--journal", str(database), "--base-url", "http://127.0.0.1:9"], DEV
    )
    assert code == 2
    assert "is an SQLite database that is not a box-sessions journal" in err
    assert "Traceback" not in err
    assert out == ""
    assert database.read_bytes() == before


async def test_rerunning_a_finished_job_sends_nothing_and_reports_each_input_once(tmp_path: Path) -> None:
    """A finished job run again: nothing sent, exit 0, one report row per distinct input, progress at 100%."""
    fake = FakeBox()
    ids = write(tmp_path / "ids.txt", ["1", "2", "3", "2", "1"])  # two repeats
    logins = write(tmp_path / "logins.txt", ["a@example.com"])
    journal, report = tmp_path / "journal.sqlite", tmp_path / "report.jsonl"
    async with fake.serve() as base_url:
        args = ["terminate", "--user-ids", ids, "--user-logins", logins, "--journal", str(journal)]
        args += ["--report", str(report), "--base-url", base_url]
        code, _, err = await run(args, DEV)
        assert code == 0, err
        sent = len(fake.requests)
        code, out, err = await run(args, DEV)
    assert code == 0, err
    assert len(fake.requests) == sent
    rows = [json.loads(line) for line in report.read_text().splitlines()]
    assert sorted((row["field"], row["value"]) for row in rows) == [
        ("user_ids", "1"),
        ("user_ids", "2"),
        ("user_ids", "3"),
        ("user_logins", "a@example.com"),
    ]
    assert all(row["status"] == "terminated" and row["journal"] for row in rows)
    assert out.startswith("Resumed: earlier runs terminated every one of this job's 6 inputs (journal)")
    assert err.splitlines()[-1].startswith("[########################] 6/6 | terminated 0 | skipped (journal) 4 |")


async def test_the_same_job_from_stdin_resumes(tmp_path: Path) -> None:
    """With --journal, stdin is one more input of the job: the same lines again resume, other lines are refused."""
    fake = FakeBox()
    journal = tmp_path / "journal.sqlite"
    async with fake.serve() as base_url:
        args = ["terminate", "--user-ids", "-", "--journal", str(journal), "--base-url", base_url]
        code, _, err = await run(args, DEV, stdin="1\n2\n")
        assert code == 0, err
        sent = len(fake.requests)
        code, out, _ = await run(args, DEV, stdin="1\n2\n")
        assert (code, len(fake.requests)) == (0, sent)
        assert "earlier runs terminated every one of this job's 2 inputs" in out
        code, _, err = await run(args, DEV, stdin="1\n2\n3\n")
    assert code == 2
    assert "belongs to another job" in err


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """``path`` read-only, even for root (whom file modes do not stop): the immutable attribute then."""
    if os.geteuid() != 0:
        path.chmod(stat.S_IRUSR)
        try:
            yield
        finally:
            path.chmod(stat.S_IRUSR | stat.S_IWUSR)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(path)], check=False, capture_output=True).returncode:  # noqa: S603
        pytest.skip("running as root, and the file cannot be made immutable here (chattr +i)")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(path)], check=True)  # noqa: S603


async def test_a_read_only_journal_is_found_before_anything_is_sent(tmp_path: Path) -> None:
    """Resuming with a journal that cannot be written exits 2 before the first request, not after Box acted."""
    fake = FakeBox()
    journal = tmp_path / "journal.sqlite"
    async with fake.serve() as base_url:
        args = ["terminate", "--user-ids", write(tmp_path / "ids.txt", ["1", "2"]), "--journal", str(journal)]
        args += ["--base-url", base_url]
        code, _, err = await run(args, DEV)
        assert code == 0, err
        sent = len(fake.requests)
        with read_only(journal):
            code, out, err = await run(args, DEV)
    assert code == 2
    assert f"--journal: cannot use {str(journal)!r} as a journal" in err
    assert "readonly" in err
    assert out == ""
    assert len(fake.requests) == sent


async def test_a_journal_on_a_full_disk_is_found_before_anything_is_sent() -> None:
    """A journal that cannot be written (/dev/full, a full disk) exits 2 before the first request."""
    fake = FakeBox()
    async with fake.serve() as base_url:
        code, out, err = await run(
            ["terminate", "--user-id", "1", "--journal", "/dev/full", "--base-url", base_url], DEV
        )
    assert code == 2
    assert "--journal: cannot use '/dev/full' as a journal" in err
    assert "Traceback" not in err
    assert out == ""
    assert fake.requests == []
