"""The progress display on stderr: a bar redrawn on a terminal, plain periodic lines otherwise.

The bar shows the `Summary`'s counts, so that it and the summary at the end count alike.
"""

from __future__ import annotations

import time
from typing import TextIO

from .._termination import Progress
from ._summary import Summary

_NOTHING_YET = Progress(terminated=0, failed=0, sent=0, read=0, duplicates=0)


class ProgressDisplay:
    """A progress bar on a terminal; plain periodic lines otherwise (on stderr).

    Args:
        stream: Where to draw.
        summary: The job's counts: its ``total`` is the bar's 100%.
        interval: Seconds between plain lines when ``stream`` is not a terminal.
    """

    def __init__(self, stream: TextIO, summary: Summary, *, interval: float = 2.0) -> None:
        self._stream = stream
        self._summary = summary
        self._tty = stream.isatty()
        self._interval = interval
        self._started = time.monotonic()
        self._last_drawn = 0.0

    def __call__(self, _progress: Progress) -> None:
        """Redraw when it is time, after a batch (the summary has taken its counts already)."""
        self._draw(force=False)

    def tick(self) -> None:
        """Redraw when it is time (while the journal skips values and no batch completes)."""
        self._draw(force=False)

    def _draw(self, *, force: bool) -> None:
        now = time.monotonic()
        if not (force or self._tty) and now - self._last_drawn < self._interval:
            return
        self._last_drawn = now
        self._stream.write(self.render(self._summary, now - self._started) + ("\r" if self._tty else "\n"))
        self._stream.flush()

    def render(self, summary: Summary, elapsed: float) -> str:
        """One line: done of total with a bar and ETA when the total is known, rate, 429s and retries."""
        p = summary.last or _NOTHING_YET
        skipped = sum(summary.skipped.values())
        done, total = summary.accounted, summary.total
        rate = p.terminated / elapsed if elapsed > 0 else 0.0
        parts = [f"terminated {p.terminated:,}", f"failed {p.failed:,}", f"{rate:,.0f} ids/s"]
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
