"""The summary the command prints when a job ends, tallied from the streamed batch results."""

from __future__ import annotations

import collections

import attrs

from .._bulk import BatchResult, Progress, failure_kind, summary_text


@attrs.define
class Summary:
    """What the command prints at the end; built from the streamed results, not held ids."""

    terminated: collections.Counter[str] = attrs.field(factory=collections.Counter)
    errors: collections.Counter[str] = attrs.field(factory=collections.Counter)
    failed: int = 0
    last: Progress | None = None
    stopped_by: BaseException | None = None

    def add(self, result: BatchResult) -> None:
        for field, _ in result.terminated:
            self.terminated[field] += 1
        for failure in result.failed:
            self.failed += 1
            self.errors[failure_kind(failure.error)] += 1
        self.stopped_by = result.stopped_by
        self.last = result.progress

    def text(self, elapsed: float, skipped: int) -> str:
        p = self.last or Progress(0, 0, 0, 0, 0)
        text = summary_text(
            terminated=self.terminated,
            failure_kinds=self.errors,
            duplicates=p.duplicates,
            requests=p.requests,
            retries=p.retries,
            rate_limited=p.rate_limited,
            elapsed=elapsed,
        )  # stopped_by goes to stderr, in run_job
        if skipped:
            text += f" {skipped:,} already terminated by an earlier run (journal), not sent again."
        return text
