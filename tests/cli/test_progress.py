"""The progress display on stderr: one line redrawn on a terminal.

What a terminal shows is worked out by `screen_of` from what was written: a carriage return goes
back to the start of the row, a character overwrites what is under the cursor, and a row that is
full wraps, as terminals do.
"""

from __future__ import annotations

import io

from box_sessions import Progress
from box_sessions._cli._progress import ProgressDisplay
from box_sessions._cli._summary import Summary
from box_sessions._termination import BatchResult


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
