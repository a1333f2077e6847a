"""The report never overwrites what the job reads or its journal: a usage error before anything is sent.

Run as a real process against FakeBox on 127.0.0.1.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from box_sessions.testing import FakeBox

from ..support.cli_process import DEV, run, write


@pytest.mark.parametrize("spelling", ["same-path", "another-spelling", "symlink", "hard-link"])
async def test_a_report_naming_an_input_file_is_refused(tmp_path: Path, spelling: str) -> None:
    """--user-ids three.txt --report three.txt (however spelt) exits 2 naming both options; the ids are kept."""
    fake = FakeBox()
    ids = tmp_path / "three.txt"
    write(ids, ["1", "2", "3"])
    (tmp_path / "sub").mkdir()
    report = {
        "same-path": ids,
        "another-spelling": tmp_path / "sub" / ".." / "three.txt",
        "symlink": tmp_path / "link.txt",
        "hard-link": tmp_path / "hard.txt",
    }[spelling]
    if spelling == "symlink":
        report.symlink_to(ids)
    elif spelling == "hard-link":
        os.link(ids, report)
    async with fake.serve() as base_url:
        code, out, err = await run(
            ["terminate", "--user-ids", str(ids), "--report", str(report), "--base-url", base_url], DEV
        )
    assert code == 2
    assert err.startswith("box-sessions: --report and --user-ids name the same file")
    assert "would overwrite" in err
    assert len(err.splitlines()) == 1
    assert out == ""
    assert ids.read_text() == "1\n2\n3\n"
    assert fake.requests == []


async def test_a_report_naming_a_bulk_file_is_refused(tmp_path: Path) -> None:
    """--bulk-file users.csv --report users.csv exits 2 naming both options; the file is kept."""
    bulk = tmp_path / "users.csv"
    bulk.write_text("user_ids\n1\n", encoding="utf-8")
    code, _, err = await run(
        ["terminate", "--bulk-file", str(bulk), "--report", str(bulk), "--base-url", "http://127.0.0.1:9"], DEV
    )
    assert code == 2
    assert err.startswith("box-sessions: --report and --bulk-file name the same file")
    assert bulk.read_text() == "user_ids\n1\n"


@pytest.mark.parametrize("exists", [False, True], ids=["new", "existing"])
async def test_a_report_naming_the_journal_is_refused(tmp_path: Path, exists: bool) -> None:
    """--journal X --report X exits 2 naming both options, before anything is sent; a journal is kept."""
    fake = FakeBox()
    journal = tmp_path / "job.sqlite"
    async with fake.serve() as base_url:
        args = ["terminate", "--user-id", "1", "--journal", str(journal), "--base-url", base_url]
        if exists:
            code, _, err = await run(args, DEV)
            assert code == 0, err
        before = journal.read_bytes() if exists else None
        sent = len(fake.requests)
        code, out, err = await run([*args, "--report", str(tmp_path / "." / "job.sqlite")], DEV)
    assert code == 2
    assert err.startswith("box-sessions: --report and --journal name the same file")
    assert len(err.splitlines()) == 1
    assert out == ""
    assert len(fake.requests) == sent
    assert (journal.read_bytes() if journal.exists() else None) == before


async def test_a_journal_naming_an_input_file_is_refused(tmp_path: Path) -> None:
    """--user-ids ids.txt --journal ids.txt exits 2 naming both options; the ids are kept."""
    ids = write(tmp_path / "ids.txt", ["1"])
    code, _, err = await run(
        ["terminate", "--user-ids", ids, "--journal", ids, "--base-url", "http://127.0.0.1:9"], DEV
    )
    assert code == 2
    assert err.startswith("box-sessions: --journal and --user-ids name the same file")
    assert Path(ids).read_text() == "1\n"
