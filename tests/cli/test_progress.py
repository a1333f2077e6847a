"""The progress display on stderr: one line redrawn on a terminal, leaving nothing of what it overwrote.

What a terminal shows is worked out by `screen_of` from what was written: a carriage return goes
back to the start of the row, a character overwrites what is under the cursor, and a row that is
full wraps, as terminals do.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import io
import os
import pty
import struct
import sys
import termios

from box_sessions import Progress
from box_sessions._cli._progress import ProgressDisplay
from box_sessions._cli._summary import Summary
from box_sessions._termination import BatchResult, Field
from box_sessions.testing import FakeBox

from ..support.cli_process import DEV, environment


def screen_of(text: str, columns: int = 10_000) -> list[str]:
    """The rows a terminal ``columns`` wide shows after ``text`` was written to it (trailing blanks dropped)."""
    rows: list[list[str]] = [[]]
    row = col = 0
    for char in text:
        if char == "\r":
            col = 0
        elif char == "\n":
            row += 1
        else:
            if col == columns:  # the row is full: the terminal wraps
                row, col = row + 1, 0
            while len(rows) <= row:
                rows.append([])
            rows[row][col : col + 1] = [char]
            col += 1
        while len(rows) <= row:
            rows.append([])
    return ["".join(chars).rstrip() for chars in rows]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def after(summary: Summary, **counts: int) -> Progress:
    """Give ``summary`` one more batch: the ids it terminated up to ``counts["terminated"]``, and ``counts``."""
    progress = Progress(**{"terminated": 0, "failed": 0, "sent": 0, "read": 0, "duplicates": 0, **counts})
    ids: tuple[tuple[Field, str], ...] = tuple(
        ("user_ids", str(i)) for i in range(summary.terminated, progress.terminated)
    )
    summary.add(BatchResult("users", ids, (), progress))
    return progress


def test_progress_bar_on_a_terminal() -> None:
    """On a terminal the progress is one line redrawn with a bar, rate, ETA and 429s."""
    screen = Terminal()
    summary = Summary(total=200)
    display = ProgressDisplay(screen, summary)
    display(after(summary, terminated=50, sent=50, read=50, rate_limited=2))
    display.finish()
    text = screen.getvalue()
    assert text.endswith("\n")
    assert screen_of(text)[0].startswith("[######                  ] 50/200")
    assert "ETA" in text
    assert "429s 2" in text
    after(summary, terminated=100, sent=100, read=100)
    line = display.render(summary, elapsed=10.0)
    assert "10 ids/s" in line
    assert "ETA 10 s" in line


def test_a_shorter_line_leaves_nothing_of_the_longer_one_it_overwrites() -> None:
    """A redraw shorter than the line before it clears the rest: "10 ids/s" does not show as "10 ids/sids/s"."""
    screen = Terminal()
    summary = Summary(total=None)
    seconds = iter([0.0, 0.01, 100.0])  # the start, then the two redraws
    display = ProgressDisplay(screen, summary, clock=lambda: next(seconds))
    display(after(summary, terminated=1000))  # 100,000 ids/s
    display(after(summary, terminated=1001))  # 10 ids/s: a shorter line
    assert screen_of(screen.getvalue()) == [display.render(summary, elapsed=100.0)]
    assert "| 10 ids/s |" in screen_of(screen.getvalue())[0]


async def test_on_a_narrow_terminal_the_bar_stays_on_one_row() -> None:
    """On a 60-column terminal each redraw fits the row, so it never wraps and leaves one row, the final counts."""
    fake = FakeBox(latency=0.02)
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 60, 0, 0))
    async with fake.serve() as base_url:
        proc = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "box_sessions", "terminate", "--base-url", base_url, "--batch-size", "5"),
            *(a for i in range(1, 41) for a in ("--user-id", str(i))),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=follower,
            env=environment(DEV),
        )
        try:
            # A few hundred bytes: the terminal's buffer holds them until the command has ended.
            await asyncio.wait_for(proc.wait(), 120)
            written = read_what_is_there(leader)
        finally:
            os.close(follower)
            os.close(leader)
    assert proc.returncode == 0
    rows = [row for row in screen_of(written, columns=60) if row]
    assert len(rows) == 1, rows
    assert rows[0].startswith("[########################] 40/40")


def read_what_is_there(fd: int) -> str:
    """All that waits to be read from a pseudo-terminal, without waiting for more."""
    os.set_blocking(fd, False)
    chunks = []
    with contextlib.suppress(BlockingIOError):
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


def test_results_taken_out_of_order_count_as_the_latest() -> None:
    """Two batches that complete together come in any order: the bar and the summary show the later counts."""
    summary = Summary(total=20)
    later = Progress(terminated=10, failed=0, sent=10, read=10, duplicates=0, requests=2, retries=1)
    earlier = Progress(terminated=5, failed=0, sent=10, read=10, duplicates=0, requests=1, retries=0)
    summary.add(BatchResult("users", tuple(("user_ids", str(i)) for i in range(5, 10)), (), later))
    summary.add(BatchResult("users", tuple(("user_ids", str(i)) for i in range(5)), (), earlier))
    line = ProgressDisplay(Terminal(), summary).render(summary, elapsed=1.0)
    assert line.startswith("[############            ] 10/20 | terminated 10 | failed 0 |")
    assert line.endswith("| 429s 0, retries 1")
    assert (
        "10 distinct inputs (10 user ids, 0 logins, 0 groups); none failed; 0 duplicates dropped. 2 requests, 1 retry"
        in (summary.text())
    )
