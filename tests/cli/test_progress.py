"""The progress display on stderr: one line redrawn on a terminal, leaving nothing of what it overwrote.

What a terminal shows is worked out by `screen_of` from what was written: a carriage return goes
back to the start of the row, a character overwrites what is under the cursor, and a row that is
full wraps, as terminals do.
"""

from __future__ import annotations

import asyncio
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
from box_sessions._termination import BatchResult
from box_sessions.testing import FakeBox

from ..cli_process import DEV, environment


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


def after(summary: Summary, **counts: int) -> Summary:
    """``summary`` with one more (empty) batch result whose progress has ``counts``."""
    progress = Progress(**{"terminated": 0, "failed": 0, "sent": 0, "read": 0, "duplicates": 0, **counts})
    summary.add(BatchResult("users", (), (), progress))
    return summary


def test_progress_bar_on_a_terminal() -> None:
    """On a terminal the progress is one line redrawn with a bar, rate, ETA and 429s."""
    screen = Terminal()
    summary = Summary(total=200)
    display = ProgressDisplay(screen, summary)
    display(after(summary, terminated=50, sent=50, read=50, rate_limited=2).last)  # type: ignore[arg-type]
    display.finish()
    text = screen.getvalue()
    assert text.endswith("\n")
    assert screen_of(text)[0].startswith("[######                  ] 50/200")
    assert "ETA" in text
    assert "429s 2" in text
    line = display.render(after(summary, terminated=100, sent=100, read=100), elapsed=10.0)
    assert "10 ids/s" in line
    assert "ETA 10 s" in line


def test_a_shorter_line_leaves_nothing_of_the_longer_one_it_overwrites() -> None:
    """A redraw shorter than the line before it clears the rest: "retries 1" does not show as "retries 10"."""
    screen = Terminal()
    summary = Summary(total=None)
    display = ProgressDisplay(screen, summary)
    display(after(summary, terminated=5, retries=10).last)  # type: ignore[arg-type]
    display(after(summary, terminated=6, retries=1).last)  # type: ignore[arg-type]
    assert screen_of(screen.getvalue())[0].endswith("| 429s 0, retries 1")


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
            stdout=asyncio.subprocess.PIPE,
            stderr=follower,
            env=environment(DEV),
        )
        os.close(follower)
        written = await asyncio.wait_for(asyncio.to_thread(read_until_closed, leader), 120)
        await asyncio.wait_for(proc.wait(), 60)
    assert proc.returncode == 0
    rows = [row for row in screen_of(written, columns=60) if row]
    assert len(rows) == 1, rows
    assert rows[0].startswith("[########################] 40/40")


def read_until_closed(fd: int) -> str:
    """Everything written to a pseudo-terminal until its other end is closed (Linux then says EIO)."""
    chunks = []
    try:
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    except OSError:
        pass
    finally:
        os.close(fd)
    return b"".join(chunks).decode()
