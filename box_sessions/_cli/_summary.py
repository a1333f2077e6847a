"""The summary the command prints when a job ends, and the counts its progress bar shows on the way.

One object for both, so that they count alike: what the job terminated and failed (its tally),
what it dropped as repeats, what the journal skipped as terminated by earlier runs, and, when a
signal or an output that cannot be written stops the job, how many inputs it had not reached.
"""

from __future__ import annotations

import collections
import signal
from typing import TYPE_CHECKING, Any

import attrs

from .._termination import FIELDS, BatchResult, Progress, Tally, summary_text, utc_text
from .._termination._report import counted
from ._exit import UsageError

if TYPE_CHECKING:
    from ._journal import Journal

__all__ = ["Summary"]

_NOTHING_YET = Progress(terminated=0, failed=0, sent=0, read=0, duplicates=0)


def _later(a: Progress, b: Progress) -> Progress:
    """The later of two snapshots of a job's counts: the larger of each, as every count only grows."""
    return Progress(
        **{field.name: max(getattr(a, field.name), getattr(b, field.name)) for field in attrs.fields(Progress)}
    )


@attrs.define
class Summary:
    """What the command reports at the end, folded in from the streamed batch results as they come.

    Attributes:
        total: How many values the inputs hold, repeats included; ``None`` while stdin streams.
        journal: The job's journal, if one was given: what it skips is read from it as the job runs.
        tally: The counts of this run's outcomes, per field and per kind of failure.
        last: The job's counts after its last batch; ``None`` when no batch ended (nothing was read
            but what the journal skipped).
        read: Input values the job has read so far, those the journal skipped included.
        stopped_by: The fatal error that stopped the job, if any.
        elapsed: Seconds the job ran.
        output_error: Why the job stopped when its journal or report could not be written any more.
        signal: The signal that stopped the job (SIGINT, SIGTERM), if one did.
        first_accepted, last_accepted: When Box accepted its first and last values (ISO 8601, UTC),
            earlier runs' included; ``None`` before any.
    """

    total: int | None = None
    journal: Journal | None = None
    tally: Tally = attrs.field(factory=Tally)
    last: Progress | None = None
    read: int = 0
    stopped_by: BaseException | None = None
    elapsed: float = 0.0
    output_error: UsageError | None = None
    signal: int | None = None
    first_accepted: str | None = None
    last_accepted: str | None = None

    def add(self, result: BatchResult) -> None:
        """Fold one batch's outcome in.

        Batches that complete together come in any order, so a result may carry counts older than
        the one before it; each count only grows, so the larger of each is the later.
        """
        self.tally.add(result)
        for acceptance in result.accepted:
            self.accepted_at(utc_text(acceptance.accepted_at))
        self.stopped_by = result.stopped_by
        self.last = result.progress if self.last is None else _later(self.last, result.progress)

    def accepted_at(self, moment: str | None) -> None:
        """Box accepted values at ``moment`` (ISO 8601, UTC): the first and last such moments are kept."""
        if moment is None:
            return
        self.first_accepted = moment if self.first_accepted is None else min(self.first_accepted, moment)
        self.last_accepted = moment if self.last_accepted is None else max(self.last_accepted, moment)

    @property
    def terminated(self) -> int:
        """Values Box accepted in this run, as the results taken so far say."""
        return sum(self.tally.terminated.values())

    @property
    def skipped(self) -> collections.Counter[str]:
        """Values the journal skipped as terminated by an earlier run, per field, each counted once."""
        return self.journal.skipped if self.journal is not None else collections.Counter()

    @property
    def earlier(self) -> int:
        """Distinct inputs earlier runs of the job terminated, as the journal held them when this run began."""
        return self.journal.earlier if self.journal is not None else 0

    @property
    def duplicates(self) -> int:
        """Input values dropped as repeats: by the job, and by the journal's skipping."""
        skipped_repeats = self.journal.skipped_duplicates if self.journal is not None else 0
        return (self.last or _NOTHING_YET).duplicates + skipped_repeats

    @property
    def accounted(self) -> int:
        """Input values with an outcome: terminated, failed, dropped as a repeat, or skipped by the journal.

        Counted from the results taken, as the journal and the report record them, not from a
        batch's counts, which include batches that completed but were not taken yet.
        """
        return self.terminated + self.tally.failed + self.duplicates + sum(self.skipped.values())

    @property
    def stopped(self) -> bool:
        """True when a signal, or an output that cannot be written, stopped the job before its end."""
        return self.signal is not None or self.output_error is not None

    @property
    def not_reached(self) -> int | None:
        """Input values without an outcome (never read, or in a batch cancelled in flight); ``None`` while
        stdin streams, as their number is not known."""
        return None if self.total is None else self.total - self.accounted

    @property
    def ok(self) -> bool:
        """True when the job ran to its end and every distinct input is terminated."""
        stopped = self.stopped_by or self.output_error or self.signal
        return stopped is None and not self.tally.failed

    def text(self) -> str:
        """The summary paragraph (why the job stopped early is written to stderr apart)."""
        done = self.terminated
        total = counted(self.total or 0, "input")
        if self.earlier and not (done or self.tally.failed or self.stopped):
            sentences = [
                f"Resumed: earlier runs terminated every one of this job's {total} (journal): nothing was left to send."
            ]
        else:
            sentences = []
            if self.earlier:
                sentences.append(
                    f"Resumed: this job has {total}; earlier runs terminated {self.earlier:,} of them (journal), "
                    "which are not sent again."
                )
            p = self.last or _NOTHING_YET
            sentences.append(
                summary_text(
                    self.tally,
                    duplicates=self.duplicates,
                    requests=p.requests,
                    retries=p.retries,
                    rate_limited=p.rate_limited,
                    elapsed=self.elapsed,
                )
            )
            if self.earlier:
                terminated = counted(self.earlier + done, "distinct input")
                sentences.append(f"Earlier runs and this one terminated {terminated} in all.")
        if self.stopped:
            sentences += [self._not_reached_text(), self._how_to_finish()]
        return " ".join(sentences)

    def _not_reached_text(self) -> str:
        """How much of the input the stopped job did not reach: a count, or, while stdin streams, a place."""
        in_flight = self.read - self.accounted  # read, but in a batch cancelled before Box answered
        if self.not_reached is None:
            read = counted(self.read, "value")
            cancelled = f", nor were {in_flight:,} of those, in batches cancelled in flight" if in_flight else ""
            return f"The job was stopped before its end: the input after the {read} it read was not reached{cancelled}."
        cancelled = f" ({in_flight:,} of them in batches cancelled before Box answered)" if in_flight else ""
        verb = "was" if self.not_reached == 1 else "were"
        total = counted(self.total or 0, "input")
        return f"The job was stopped before its end: {self.not_reached:,} of its {total} {verb} not reached{cancelled}."

    def _how_to_finish(self) -> str:
        """What to run to finish the stopped job: the same command, resuming its journal if it has one."""
        start = "To finish, once the report or journal can be written again," if self.output_error else "To finish,"
        if self.journal is not None:
            return f"{start} run the same command with the same --journal: it sends only what is not terminated yet."
        return (
            f"{start} run the same command again with the same input: it sends every input again (terminating "
            "a session twice is harmless); with --journal FILE a stopped job resumes instead."
        )

    def to_json(self) -> dict[str, Any]:
        """The summary as one JSON object (``--json``): counts per field and per kind of failure."""
        p = self.last or _NOTHING_YET
        reason = self.output_error or self.stopped_by
        stopped = None if reason is None else str(reason)
        if self.signal is not None:
            stopped = f"interrupted by {signal.Signals(self.signal).name}"
        return {
            "ok": self.ok,
            "inputs": self.total,
            "earlier_runs_terminated": self.earlier,
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
            "not_reached": self.not_reached if self.stopped else 0,
            "first_accepted_at": self.first_accepted,
            "last_accepted_at": self.last_accepted,
        }
