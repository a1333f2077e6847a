"""What the command reads: value files as people have them (encodings, byte-order marks, stray CSV
rows, empty exports), run as a real process against FakeBox on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

from box_sessions.testing import FakeBox

from .cli_process import DEV, run, write


async def test_a_csv_row_given_as_a_login_is_invalid_input_and_not_sent(tmp_path: Path) -> None:
    """A CSV row in a logins file (``30003,Carol,carol@example.com``) is reported invalid and never sent."""
    fake = FakeBox()
    logins = write(tmp_path / "logins.txt", ["alice@example.com", "30003,Carol,carol@example.com"])
    report = tmp_path / "report.jsonl"
    async with fake.serve() as base_url:
        code, out, _ = await run(
            ["terminate", "--user-logins", logins, "--report", str(report), "--base-url", base_url], DEV
        )
    assert code == 1
    assert fake.terminated["user_logins"] == ["alice@example.com"]
    rows = {row["value"]: row for row in map(json.loads, report.read_text().splitlines())}
    assert rows["30003,Carol,carol@example.com"]["status"] == "failed"
    assert "comma" in rows["30003,Carol,carol@example.com"]["error"]
    assert "1 invalid input" in out
