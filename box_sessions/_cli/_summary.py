"""The summary the command prints when a job ends, tallied from the streamed batch results."""

from __future__ import annotations

from collections.abc import Callable

import attrs

from .._termination import BatchResult, Progress, Tally, summary_text


@attrs.define
class Summary:
    """What the command prints at the end; built from the streamed results, not held ids."""

    skipped: Callable[[], int] = lambda: 0
    tally: Tally = attrs.field(factory=Tally)
    last: Progress | None = None
    stopped_by: BaseException | None = None
    elapsed: float = 0.0

    def add(self, result: BatchResult) -> None:
        self.tally.add(result)
        self.stopped_by = result.stopped_by
        self.last = result.progress

    def text(self) -> str:
        elapsed, skipped = self.elapsed, self.skipped()
        p = self.last or Progress(0, 0, 0, 0, 0)
        text = summary_text(
            self.tally,
            duplicates=p.duplicates,
            requests=p.requests,
            retries=p.retries,
            rate_limited=p.rate_limited,
            elapsed=elapsed,
        )  # stopped_by goes to stderr, in run_job
        if skipped:
            text += f" {skipped:,} already terminated by an earlier run (journal), not sent again."
        return text
