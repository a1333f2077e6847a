"""What a bulk job reports: each batch's result, the running tally, and the report of every input."""

from __future__ import annotations

import collections
import datetime
import itertools
import operator
from collections.abc import Mapping
from typing import Any, Literal, TypeAlias

import attrs

from .._errors import BoxAPIError, BoxError
from .._validation import shown
from ._endpoints import FIELDS, Field

__all__ = [
    "Acceptance",
    "BatchKind",
    "BatchResult",
    "Failure",
    "Progress",
    "Tally",
    "TerminationReport",
    "counted",
    "failure_kind",
    "summary_text",
]


@attrs.frozen
class Failure:
    """One input value that was not terminated, and why.

    Attributes:
        field: ``"user_ids"``, ``"user_logins"`` or ``"group_ids"``.
        value: The normalised value (a digit string for ids), or the raw input when it was invalid.
        error: The exception: a `ValueError` for invalid input, else the `BoxError` of its request.
    """

    field: Field
    value: object
    error: BaseException

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: field, value, status, error type and message, and Box's details."""
        value = self.value if isinstance(self.value, str) else shown(self.value)
        data: dict[str, Any] = {
            "field": self.field,
            "value": value,
            "status": "failed",
            "error_type": type(self.error).__name__,
            "error": str(self.error),
        }
        if isinstance(self.error, BoxAPIError):
            data.update(http_status=self.error.status, code=self.error.code, request_id=self.error.request_id)
        return data


def utc_text(moment: datetime.datetime) -> str:
    """A moment as an ISO 8601 UTC time to the millisecond: ``2026-12-03T07:30:35.123Z``."""
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@attrs.frozen
class Acceptance:
    """One request Box accepted: the evidence that ties the values it carried to Box's side.

    Box answers 202 and runs the terminations asynchronously; its request id (the answer's
    ``box-request-id`` header) is what Box support can trace, and the time says when.

    Attributes:
        request_id: Box's id of the request; ``None`` when the answer carried none.
        accepted_at: When Box's answer came (UTC).
        terminated: The ``(field, value)`` pairs the request carried.
    """

    request_id: str | None
    accepted_at: datetime.datetime
    terminated: tuple[tuple[Field, str], ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: the request id, the time (ISO 8601, UTC), and the values per field."""
        data: dict[str, Any] = {"request_id": self.request_id, "accepted_at": utc_text(self.accepted_at)}
        for field in FIELDS:
            values = [value for f, value in self.terminated if f == field]
            if values:
                data[field] = values
        return data


@attrs.frozen
class Progress:
    """Counts so far, passed to ``on_progress`` after each batch."""

    terminated: int
    failed: int
    sent: int
    read: int
    duplicates: int
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0


BatchKind: TypeAlias = Literal["users", "groups", "invalid", "unsent"]


@attrs.frozen
class BatchResult:
    """The outcome of one batch, as `iter_terminate` yields it.

    Attributes:
        kind: ``"users"`` or ``"groups"`` for a batch sent to that endpoint; ``"invalid"`` for input
            values rejected before sending; ``"unsent"`` for values not sent because the job stopped.
        terminated: ``(field, value)`` pairs Box accepted.
        failed: The values that failed, with their errors.
        progress: The job's counts after this batch.
        stopped_by: The fatal error that has stopped the job, once there is one.
        accepted: The requests Box accepted for it (more than one when a bad id made it split),
            each with Box's request id and time: every value of ``terminated`` is in one of them.
    """

    kind: BatchKind
    terminated: tuple[tuple[Field, str], ...]
    failed: tuple[Failure, ...]
    progress: Progress
    stopped_by: BoxError | None = None
    accepted: tuple[Acceptance, ...] = ()


@attrs.define
class Tally:
    """The counts of a job's outcomes, folded in batch by batch: what a summary is made of.

    `TerminationReport` keeps one beside its lists; the command line, which streams results and
    holds no ids, keeps only this.
    """

    terminated: collections.Counter[str] = attrs.field(factory=collections.Counter)
    """Values Box accepted, per field."""
    failure_kinds: collections.Counter[str] = attrs.field(factory=collections.Counter)
    """Values that failed, per kind (see `failure_kind`)."""
    samples: dict[str, str] = attrs.field(factory=dict)
    """The first error message of each kind of failure, to show beside its count."""

    @property
    def failed(self) -> int:
        """Values that failed."""
        return sum(self.failure_kinds.values())

    def add(self, result: BatchResult) -> None:
        """Count one batch's outcome."""
        self.terminated.update(map(operator.itemgetter(0), result.terminated))
        for failure in result.failed:
            kind = failure_kind(failure.error)
            self.failure_kinds[kind] += 1
            self.samples.setdefault(kind, _shortened(str(failure.error)))


@attrs.define
class TerminationReport:
    """What happened to every input of a bulk job.

    Attributes:
        terminated: For each field, the normalised values Box accepted.
        failed: Every value that was not terminated, with the reason.
        duplicates: Input values dropped because they were given before.
        requests: HTTP requests sent (retries and bisection included).
        retries: Retries of the requests (429s and errors worth another attempt).
        rate_limited: Requests answered 429.
        elapsed: Seconds the job took.
        stopped_by: The fatal error that stopped the job, if any: a 403, a 401 after a fresh token,
            or `ClientClosedError` when the client was closed under the job.
        tally: The counts, per field and per kind of failure.
        accepted: Every request Box accepted, with Box's request id and the time: each value of
            ``terminated`` is in exactly one of them (the evidence for an incident record).
    """

    terminated: dict[str, list[str]] = attrs.field(factory=lambda: {f: [] for f in FIELDS})
    failed: list[Failure] = attrs.field(factory=list)
    duplicates: int = 0
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    elapsed: float = 0.0
    stopped_by: BoxError | None = None
    tally: Tally = attrs.field(factory=Tally)
    accepted: list[Acceptance] = attrs.field(factory=list)

    @property
    def ok(self) -> bool:
        """True only when every distinct input was terminated: nothing failed, invalid input included."""
        return self.stopped_by is None and not self.failed

    @property
    def terminated_count(self) -> int:
        """Values Box accepted, over every field."""
        return sum(len(values) for values in self.terminated.values())

    def add(self, result: BatchResult) -> None:
        """Fold one batch's outcome into the report."""
        for field, items in itertools.groupby(result.terminated, key=operator.itemgetter(0)):
            self.terminated[field].extend(map(operator.itemgetter(1), items))
        self.failed.extend(result.failed)
        self.accepted.extend(result.accepted)
        self.tally.add(result)

    def to_dict(self) -> dict[str, Any]:
        """A dict that `json.dumps` accepts; it holds no secret."""
        return {
            "ok": self.ok,
            "terminated": {field: list(values) for field, values in self.terminated.items()},
            "failed": [failure.to_dict() for failure in self.failed],
            "duplicates": self.duplicates,
            "requests": self.requests,
            "retries": self.retries,
            "rate_limited": self.rate_limited,
            "elapsed_seconds": round(self.elapsed, 3),
            "stopped_by": None if self.stopped_by is None else str(self.stopped_by),
            "accepted": [acceptance.to_dict() for acceptance in self.accepted],
        }

    def __str__(self) -> str:
        return summary_text(
            self.tally,
            duplicates=self.duplicates,
            requests=self.requests,
            retries=self.retries,
            rate_limited=self.rate_limited,
            elapsed=self.elapsed,
            stopped_by=self.stopped_by,
        )

    def __repr__(self) -> str:
        return (
            f"TerminationReport(ok={self.ok}, terminated={self.terminated_count}, failed={len(self.failed)}, "
            f"duplicates={self.duplicates}, requests={self.requests})"
        )


#: The most kinds of failure a summary quotes a message of, and the longest message it quotes.
_SAMPLED_KINDS, _SAMPLE_CHARS = 3, 160
_ACCEPTED_MEANS = (
    "Box accepted these as termination jobs that it runs asynchronously: its answer says to check "
    "the admin events for their status."
)


def _shortened(message: str) -> str:
    return message if len(message) <= _SAMPLE_CHARS else message[: _SAMPLE_CHARS - 3] + "..."


def _reasons(tally: Tally) -> str:
    """The most frequent kinds of failure, each with one message: the cause, on screen."""
    kinds = sorted(tally.failure_kinds, key=lambda kind: (-tally.failure_kinds[kind], kind))[:_SAMPLED_KINDS]
    quoted = "; ".join(f'{kind}: "{tally.samples[kind]}"' for kind in kinds if kind in tally.samples)
    return f" Most frequent reasons, one example each: {quoted}." if quoted else ""


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """A count and its noun, singular for one: ``1 request``, ``2 requests``, ``1 retry``, ``3 retries``."""
    return f"{count:,} {noun if count == 1 else plural or noun + 's'}"


def failure_kind(error: BaseException) -> str:
    """How a failure is counted in a summary: "invalid input", or the error's class name."""
    return "invalid input" if isinstance(error, ValueError) else type(error).__name__


def summary_text(
    tally: Tally,
    *,
    duplicates: int,
    requests: int,
    retries: int,
    rate_limited: int,
    elapsed: float,
    stopped_by: BaseException | None = None,
) -> str:
    """The one-paragraph summary of a job, shared by `TerminationReport` and the command line."""
    terminated: Mapping[str, int] = tally.terminated
    failure_kinds: Mapping[str, int] = tally.failure_kinds
    done, failed = sum(terminated.values()), tally.failed
    # Box's errors by name, then invalid input last.
    order = sorted(failure_kinds, key=lambda kind: (kind == "invalid input", kind))
    kinds = ", ".join(f"{failure_kinds[kind]:,} {kind}" for kind in order)
    failed_text = f"{failed:,} failed ({kinds})" if failed else "none failed"
    nouns = {"user_ids": "user id", "user_logins": "login", "group_ids": "group"}
    fields = ", ".join(counted(terminated.get(field, 0), noun) for field, noun in nouns.items())
    text = (
        f"Terminated {done:,} of {counted(done + failed, 'distinct input')} ({fields}); {failed_text}; "
        f"{counted(duplicates, 'duplicate')} dropped. {counted(requests, 'request')}, "
        f"{counted(retries, 'retry', 'retries')}, {rate_limited:,} answered 429, in {elapsed:.1f} s."
    )
    text += _reasons(tally)
    if done:
        text += f" {_ACCEPTED_MEANS}"
    if stopped_by is not None:
        text += f" Stopped early: {stopped_by}."
    return text
