"""Evidence in the command's outputs: each terminated value with Box's request id and the time Box accepted it.

In ``--report`` lines, in the journal (a resumed job reports the values of earlier runs with their
original request ids and times), and in ``--json`` (the first and last acceptance). Run as a real
process against FakeBox, which names every answer with a ``box-request-id`` as Box does.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
from pathlib import Path

from box_sessions.testing import FakeBox

from ..support.cli_process import DEV, run, write

ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def lines_of(report: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in report.read_text(encoding="utf-8").splitlines()]


async def test_each_terminated_line_names_the_request_box_accepted_it_in(tmp_path: Path) -> None:
    """--report: a terminated value's line has Box's request id (one of FakeBox's 202s) and the UTC time."""
    fake = FakeBox()
    report = tmp_path / "report.jsonl"
    ids = write(tmp_path / "ids.txt", [str(n) for n in range(1, 251)])
    async with fake.serve() as base_url:
        code, _, err = await run(
            ["terminate", "--user-ids", ids, "--batch-size", "100", "--report", str(report), "--base-url", base_url],
            DEV,
        )
    assert code == 0, err
    lines = lines_of(report)
    accepted = {r.request_id for r in fake.requests if r.status == 202}
    assert len(accepted) == 3
    assert {line["request_id"] for line in lines} == accepted
    assert all(line["status"] == "terminated" and ISO_UTC.fullmatch(str(line["accepted_at"])) for line in lines)


async def test_a_resumed_job_reports_earlier_values_with_their_original_evidence(tmp_path: Path) -> None:
    """A job run again with its journal skips what the first run terminated, and reports it as the first run did."""
    fake = FakeBox()
    journal = tmp_path / "job.sqlite"
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    ids = write(tmp_path / "ids.txt", [str(n) for n in range(1, 51)])
    async with fake.serve() as base_url:
        args = ["terminate", "--user-ids", ids, "--journal", str(journal), "--base-url", base_url]
        code, _, err = await run([*args, "--report", str(first)], DEV)
        assert code == 0, err
        sent = len(fake.requests)
        code, out, err = await run([*args, "--report", str(second), "--json"], DEV)
    assert code == 0, err
    assert len(fake.requests) == sent  # nothing sent again
    evidence = {str(line["value"]): (line["request_id"], line["accepted_at"]) for line in lines_of(first)}
    again = {str(line["value"]): (line["request_id"], line["accepted_at"]) for line in lines_of(second)}
    assert again == evidence
    assert all(line["journal"] is True for line in lines_of(second))
    summary = json.loads(out.strip().splitlines()[-1])
    times = sorted(str(at) for _, at in evidence.values())
    assert (summary["first_accepted_at"], summary["last_accepted_at"]) == (times[0], times[-1])


async def test_json_gives_the_first_and_last_acceptance(tmp_path: Path) -> None:
    """--json: first_accepted_at and last_accepted_at, ISO 8601 UTC; none when nothing was accepted."""
    fake = FakeBox(users={"1", "2", "3"})
    ids = write(tmp_path / "ids.txt", ["1", "2", "3"])
    none = write(tmp_path / "none.txt", ["99"])
    async with fake.serve() as base_url:
        code, out, err = await run(["terminate", "--user-ids", ids, "--base-url", base_url, "--json"], DEV)
        assert code == 0, err
        code_none, out_none, _ = await run(["terminate", "--user-ids", none, "--base-url", base_url, "--json"], DEV)
    summary = json.loads(out.strip().splitlines()[-1])
    assert ISO_UTC.fullmatch(summary["first_accepted_at"])
    assert summary["first_accepted_at"] <= summary["last_accepted_at"]
    assert code_none == 1
    failed = json.loads(out_none.strip().splitlines()[-1])
    assert (failed["first_accepted_at"], failed["last_accepted_at"]) == (None, None)


async def test_a_journal_of_the_first_format_is_upgraded_and_resumed(tmp_path: Path) -> None:
    """A journal written before journals kept evidence resumes: its values are skipped (evidence unknown, null)."""
    fake = FakeBox()
    journal = tmp_path / "old.sqlite"
    ids = write(tmp_path / "ids.txt", ["1", "2"])
    report = tmp_path / "report.jsonl"
    async with fake.serve() as base_url:
        args = ["terminate", "--user-ids", ids, "--journal", str(journal), "--base-url", base_url]
        code, _, err = await run(args, DEV)
        assert code == 0, err
        with contextlib.closing(sqlite3.connect(journal)) as db, db:  # as the first format wrote it
            db.execute("UPDATE job SET value = 'box-sessions journal 1' WHERE key = 'format'")
            db.execute("CREATE TABLE old AS SELECT field, value, status, error, run FROM outcomes")
            db.execute("DROP TABLE outcomes")
            db.execute("ALTER TABLE old RENAME TO outcomes")
        sent = len(fake.requests)
        code, _, err = await run([*args, "--report", str(report)], DEV)
    assert code == 0, err
    assert len(fake.requests) == sent
    assert [(line["value"], line["request_id"]) for line in lines_of(report)] == [("1", None), ("2", None)]
