"""The progress display on stderr: a bar redrawn on a terminal, plain periodic lines otherwise."""

from __future__ import annotations

import time
from typing import TextIO

from .._termination import Progress


class ProgressDisplay:
    """A progress bar on a terminal; plain periodic lines otherwise (on stderr)."""

    def __init__(self, stream: TextIO, total: int | None, *, interval: float = 2.0) -> None:
        self._stream = stream
        self._total = total
        self._tty = stream.isatty()
        self._interval = interval
        self._started = time.monotonic()
        self._last = 0.0

    def __call__(self, progress: Progress) -> None:
        now = time.monotonic()
        if not self._tty and now - self._last < self._interval:
            return
        self._last = now
        self._stream.write(self.render(progress, now - self._started) + ("\r" if self._tty else "\n"))
        self._stream.flush()

    def render(self, p: Progress, elapsed: float) -> str:
        done = p.terminated + p.failed + p.duplicates  # the total counts every input line
        rate = p.terminated / elapsed if elapsed > 0 else 0.0
        parts = [f"terminated {p.terminated:,}", f"failed {p.failed:,}", f"{rate:,.0f} ids/s"]
        if self._total:
            share = min(1.0, done / self._total)
            bar = "#" * int(share * 24)
            eta = (self._total - done) / rate if rate > 0 else float("inf")
            eta_text = f"ETA {eta:,.0f} s" if eta != float("inf") else "ETA -"
            parts = [f"[{bar:<24}] {done:,}/{self._total:,}", *parts, eta_text]
        parts.append(f"429s {p.rate_limited:,}, retries {p.retries:,}")
        return " | ".join(parts)

    def finish(self) -> None:
        if self._tty:
            self._stream.write("\n")
