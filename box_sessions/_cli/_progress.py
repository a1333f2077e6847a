"""The progress display on stderr: a bar redrawn on a terminal, plain periodic lines otherwise.

The bar shows the `Summary`'s counts, so that it and the summary at the end count alike. On a
terminal each redraw returns to the start of the row with a carriage return and blanks what is
left of a longer line before it; it is cut to the terminal's width, since a line that wraps onto
a second row cannot be redrawn from the start of the first.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TextIO

from .._termination import Progress
from ._summary import Summary

_NOTHING_YET = Progress(terminated=0, failed=0, sent=0, read=0, duplicates=0)


def _columns(stream: TextIO) -> int | None:
    """The width of the terminal ``stream`` writes to; ``None`` when it has none to tell."""
    try:
        return os.get_terminal_size(stream.fileno()).columns or None
    except (OSError, ValueError):  # no file descriptor (io.UnsupportedOperation is both), or not a terminal
        return None


class ProgressDisplay:
    """A progress bar on a terminal; plain periodic lines otherwise (on stderr).

    Args:
        stream: Where to draw.
        summary: The job's counts: its ``total`` is the bar's 100%.
        interval: Seconds between plain lines when ``stream`` is not a terminal.
        clock: Seconds, for the rate, the ETA and the interval (`time.monotonic`; tests give their own).
    """

    def __init__(
        self, stream: TextIO, summary: Summary, *, interval: float = 2.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._stream = stream
        self._summary = summary
        self._tty = stream.isatty()
        self._interval = interval
        self._clock = clock
        self._started = clock()
        self._last_drawn = 0.0
        self._shown = 0  # characters of the line on the screen now

    def __call__(self, _progress: Progress) -> None:
        """Redraw when it is time, after a batch (the summary has taken its counts already)."""
        self._draw(force=False)

    def tick(self) -> None:
        """Redraw when it is time (while the journal skips values and no batch completes)."""
        self._draw(force=False)

    def _draw(self, *, force: bool) -> None:
        now = self._clock()
        if not (force or self._tty) and now - self._last_drawn < self._interval:
            return
        self._last_drawn = now
        line = self.render(self._summary, now - self._started)
        if self._tty:
            columns = _columns(self._stream)
            if columns is not None:
                line = line[: columns - 1]  # the last column would wrap on some terminals
            self._stream.write("\r" + line.ljust(self._shown))  # blanks what a longer line left
            self._shown = len(line)
        else:
            self._stream.write(line + "\n")
        self._stream.flush()

    def render(self, summary: Summary, elapsed: float) -> str:
        """One line: done of total with a bar and ETA when the total is known, rate, 429s and retries."""
        p = summary.last or _NOTHING_YET
        skipped = sum(summary.skipped.values())
        done, total = summary.accounted, summary.total
        rate = summary.terminated / elapsed if elapsed > 0 else 0.0
        parts = [f"terminated {summary.terminated:,}", f"failed {summary.tally.failed:,}", f"{rate:,.0f} ids/s"]
        if skipped:
            parts.insert(1, f"skipped (journal) {skipped:,}")
        if total is not None:
            share = min(1.0, done / total) if total else 1.0
            bar = "#" * int(share * 24)
            eta = (total - done) / rate if rate > 0 else float("inf")
            eta_text = f"ETA {eta:,.0f} s" if eta != float("inf") else "ETA -"
            parts = [f"[{bar:<24}] {done:,}/{total:,}", *parts, eta_text]
        parts.append(f"429s {p.rate_limited:,}, retries {p.retries:,}")
        return " | ".join(parts)

    def finish(self) -> None:
        """Draw the final counts (a job that completed shows its 100%) and end the line."""
        self._draw(force=True)
        if self._tty:
            self._stream.write("\n")
            self._stream.flush()
