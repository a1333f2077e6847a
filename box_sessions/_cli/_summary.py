"""The summary the command prints when a job ends, built from the streamed batch results' tally."""

from __future__ import annotations

import collections
import signal
from typing import Any

import attrs

from .._termination import FIELDS, BatchResult, Progress, Tally, summary_text
from ._exit import UsageError

__all__ = ["Summary"]

_NOTHING_YET = Progress(terminated=0, failed=0, sent=0, read=0, duplicates=0)


@attrs.define
class Summary:
    """What the command reports at the end: the tally of the streamed results, and what the journal skipped.

    Attributes:
        tally: The counts of this run's outcomes, per field and per kind of failure.
        last: The job's counts after its last batch; ``None`` when no batch ended (nothing was read
            but what the journal skipped).
        stopped_by: The fatal error that stopped the job, if any.
        skipped: Values an earlier run of the job terminated (per the journal), not sent again, per field.
        skipped_duplicates: Repeats of those values, dropped as duplicates.
        elapsed: Seconds the job ran.
        output_error: Why the job stopped when its journal or report could not be written any more.
        signal: The signal that stopped the job (SIGINT, SIGTERM), if one did.
    """

    tally: Tally = attrs.field(factory=Tally)
    last: Progress | None = None
    stopped_by: BaseException | None = None
    skipped: collections.Counter[str] = attrs.field(factory=collections.Counter)
    skipped_duplicates: int = 0
    elapsed: float = 0.0
    output_error: UsageError | None = None
    signal: int | None = None

    def add(self, result: BatchResult) -> None:
        """Fold one batch's outcome in."""
        self.tally.add(result)
        self.stopped_by = result.stopped_by
        self.last = result.progress

    @property
    def duplicates(self) -> int:
        """Input values dropped as repeats: by the job, and by the journal's skipping."""
        return (self.last or _NOTHING_YET).duplicates + self.skipped_duplicates

    def text(self) -> str:
        """The summary paragraph (why the job stopped early is written to stderr apart)."""
        p = self.last or _NOTHING_YET
        text = summary_text(
            self.tally,
            duplicates=self.duplicates,
            requests=p.requests,
            retries=p.retries,
            rate_limited=p.rate_limited,
            elapsed=self.elapsed,
        )
        if self.signal is not None or self.output_error is not None:
            text += " The job was stopped before its end: inputs it had not reached were not sent."
        skipped = sum(self.skipped.values())
        if skipped:
            text += (
                f" {skipped:,} more already terminated by an earlier run of this job (journal), not sent again: "
                f"{sum(self.tally.terminated.values()) + skipped:,} terminated in all."
            )
        return text

    @property
    def ok(self) -> bool:
        """True when the job ran to its end and every distinct input is terminated."""
        stopped = self.stopped_by or self.output_error or self.signal
        return stopped is None and not self.tally.failed

    def to_json(self) -> dict[str, Any]:
        """The summary as one JSON object (``--json``): counts per field and per kind of failure."""
        p = self.last or _NOTHING_YET
        reason = self.output_error or self.stopped_by
        stopped = None if reason is None else str(reason)
        if self.signal is not None:
            stopped = f"interrupted by {signal.Signals(self.signal).name}"
        return {
            "ok": self.ok,
            "terminated": {field: self.tally.terminated[field] for field in FIELDS},
            "already_terminated": {field: self.skipped[field] for field in FIELDS},
            "failed": self.tally.failed,
            "failures": dict(self.tally.failure_kinds),
            "failure_samples": dict(self.tally.samples),
            "duplicates": self.duplicates,
            "requests": p.requests,
            "retries": p.retries,
            "rate_limited": p.rate_limited,
            "elapsed_seconds": round(self.elapsed, 3),
            "stopped_by": stopped,
        }
