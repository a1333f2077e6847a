"""Bulk termination: any number of ids in batches, run concurrently, every input accounted for.

The job reads its inputs lazily, in order (user ids, then user logins, then group ids), checks and
de-duplicates each value, and groups the valid ones into batches: ids and logins share the users
endpoint, group ids go to the groups endpoint. At most ``max_concurrency`` batches are in flight,
and a new batch is read only when a slot is free, so a generator of a million ids is never held
whole. The client's rate limiter and shared cool-down pace the requests.

Every distinct input value ends in exactly one place of the report, ``terminated`` or ``failed``:

- an invalid value fails with a `ValueError` and is never sent;
- a batch answered 400 or 404 (one bad id poisons a request) is split in halves and retried, down
  to single ids, so the good ids go through and each bad one fails with Box's error; a 400 saying
  the batch is too large (or a 413) also halves the batch size for the rest of the job;
- a batch that still fails after the transport's retries fails with that error; the job goes on.
  The job's retry budget keeps a failing Box from being hammered: once spent, batches get one
  attempt each;
- a 403, or a 401 after a fresh token, would fail every further request: the job stops sending,
  fails every unsent value with that error, and still returns the report.
"""

from __future__ import annotations

import array
import asyncio
import bisect
import collections
import heapq
import inspect
import re
from collections.abc import AsyncGenerator, AsyncIterable, Awaitable, Callable, Iterable, Mapping
from typing import Any, Literal, TypeAlias

import attrs

from ._errors import (
    AuthenticationError,
    BadRequestError,
    BoxAPIError,
    BoxError,
    NotFoundError,
    PermissionDeniedError,
)
from ._retry import RetryBudget
from ._transport import CallObserver, Transport
from ._validation import normalise_id, normalise_login

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_MAX_CONCURRENCY",
    "BatchResult",
    "BulkJob",
    "Failure",
    "Progress",
    "TerminationReport",
]

Field: TypeAlias = Literal["user_ids", "user_logins", "group_ids"]
FIELDS: tuple[Field, ...] = ("user_ids", "user_logins", "group_ids")
Source: TypeAlias = "Iterable[Any] | AsyncIterable[Any] | None"

#: Ids in one request. Box documents no maximum. 100 keeps a request small (about 2 KB), lets
#: Box's documented 1,000 calls a minute carry 100,000 ids a minute, and bounds the cost of a bad
#: id: isolating one takes at most 2 * log2(100), about 14, extra requests. A server that answers
#: "too large" halves it for the rest of the job.
DEFAULT_BATCH_SIZE = 100
#: Batches in flight at once. At Box's rate (about 17 requests a second) and a few hundred
#: milliseconds per answer, 4 to 8 requests are in flight; 16 leaves room for slow answers while the
#: rate limiter, not the concurrency, sets the pace.
DEFAULT_MAX_CONCURRENCY = 16

_CANONICAL_ID = re.compile(r"0|[1-9][0-9]{0,17}")  # round-trips through a 64-bit int exactly
_TOO_LARGE = re.compile(r"too (large|many|long|big)|maximum|exceed|limit", re.IGNORECASE)


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
        value = self.value if isinstance(self.value, str) else repr(self.value)
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
    """

    kind: BatchKind
    terminated: tuple[tuple[Field, str], ...]
    failed: tuple[Failure, ...]
    progress: Progress
    stopped_by: BoxError | None = None


@attrs.define
class TerminationReport:
    """What happened to every input of a bulk job.

    Attributes:
        terminated: For each field, the normalised values Box accepted.
        failed: Every value that was not terminated, with the reason.
        duplicates: Input values dropped because they were given before.
        requests: HTTP requests sent (retries and bisection included).
        retries: Retries made by the transport.
        rate_limited: Requests answered 429.
        elapsed: Seconds the job took.
        stopped_by: The fatal error (403, or 401 after a fresh token) that stopped the job, if any.
    """

    terminated: dict[str, list[str]] = attrs.field(factory=lambda: {f: [] for f in FIELDS})
    failed: list[Failure] = attrs.field(factory=list)
    duplicates: int = 0
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    elapsed: float = 0.0
    stopped_by: BoxError | None = None

    @property
    def ok(self) -> bool:
        """True when every distinct valid input was terminated (invalid inputs are listed in `failed`)."""
        return self.stopped_by is None and all(isinstance(f.error, ValueError) for f in self.failed)

    @property
    def terminated_count(self) -> int:
        return sum(len(values) for values in self.terminated.values())

    def add(self, result: BatchResult) -> None:
        """Fold one batch's outcome into the report."""
        for field, value in result.terminated:
            self.terminated[field].append(value)
        self.failed.extend(result.failed)

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
        }

    def __str__(self) -> str:
        kinds = collections.Counter(failure_kind(f.error) for f in self.failed)
        return summary_text(
            terminated={field: len(values) for field, values in self.terminated.items()},
            failure_kinds=kinds,
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


def failure_kind(error: BaseException) -> str:
    """How a failure is counted in a summary: "invalid input", or the error's class name."""
    return "invalid input" if isinstance(error, ValueError) else type(error).__name__


def summary_text(
    *,
    terminated: Mapping[str, int],
    failure_kinds: Mapping[str, int],
    duplicates: int,
    requests: int,
    retries: int,
    rate_limited: int,
    elapsed: float,
    stopped_by: BaseException | None = None,
) -> str:
    """The one-paragraph summary of a job, shared by `TerminationReport` and the command line."""
    done, failed = sum(terminated.values()), sum(failure_kinds.values())
    # Box's errors by name, then invalid input last.
    order = sorted(failure_kinds, key=lambda kind: (kind == "invalid input", kind))
    kinds = ", ".join(f"{failure_kinds[kind]:,} {kind}" for kind in order)
    failed_text = f"{failed:,} failed ({kinds})" if failed else "none failed"
    text = (
        f"Terminated {done:,} of {done + failed:,} distinct inputs ({terminated.get('user_ids', 0):,} user ids, "
        f"{terminated.get('user_logins', 0):,} logins, {terminated.get('group_ids', 0):,} groups); {failed_text}; "
        f"{duplicates:,} duplicates dropped. {requests:,} requests, {retries:,} retries, "
        f"{rate_limited:,} answered 429, in {elapsed:.1f} s."
    )
    if stopped_by is not None:
        text += f" Stopped early: {stopped_by}."
    return text


ProgressCallback: TypeAlias = Callable[[Progress], "Awaitable[None] | None"]
Item: TypeAlias = tuple[Field, str]


@attrs.define
class _Batch:
    kind: Literal["users", "groups"]
    items: list[Item]


def _check_source(source: object, argument: str) -> None:
    if source is None:
        return
    if isinstance(source, (str, bytes, bytearray)):
        raise TypeError(f"{argument}: expected an iterable of values, got a bare {type(source).__name__} {source!r}")
    if isinstance(source, dict) or not isinstance(source, (Iterable, AsyncIterable)):
        raise TypeError(f"{argument}: expected an iterable or async iterable of values, got {type(source).__name__}")


def _check_positive_int(value: object, argument: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{argument} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{argument} must be at least 1, got {value}")
    return value


def _request_of(kind: Literal["users", "groups"], items: list[Item]) -> tuple[str, dict[str, list[str]]]:
    """The API path (after ``/2.0``) and JSON body of one batch."""
    if kind == "groups":
        return "/groups/terminate_sessions", {"group_ids": [v for _, v in items]}
    body = {
        "user_ids": [v for f, v in items if f == "user_ids"],
        "user_logins": [v for f, v in items if f == "user_logins"],
    }
    return "/users/terminate_sessions", body


def _is_too_large(error: BoxAPIError) -> bool:
    if error.status == 413:
        return True
    return error.status == 400 and bool(_TOO_LARGE.search(f"{error.code or ''} {error.message}"))


class _Seen:
    """Exact set of the values a job has read, small enough for millions of ids.

    Canonical digit ids (the usual case) are kept as unsigned 64-bit numbers in a sorted array,
    8 bytes each, with the newest few thousand in a set until they are merged in; a million ids
    take about 8 MB instead of about 60 MB as Python strings. Other values (logins, ids with a
    leading zero) stay in a plain set. No false positives: a distinct value is never dropped.
    """

    MERGE_EVERY = 65_536

    def __init__(self) -> None:
        self._sorted = array.array("Q")
        self._recent: set[int] = set()
        self._other: set[str] = set()

    def add(self, value: str, *, numeric: bool) -> bool:
        """Remember ``value``; return False if it was already there."""
        if not (numeric and _CANONICAL_ID.fullmatch(value)):
            if value in self._other:
                return False
            self._other.add(value)
            return True
        key = int(value)
        if key in self._recent:
            return False
        i = bisect.bisect_left(self._sorted, key)
        if i < len(self._sorted) and self._sorted[i] == key:
            return False
        self._recent.add(key)
        if len(self._recent) >= self.MERGE_EVERY:
            self._sorted = array.array("Q", heapq.merge(self._sorted, sorted(self._recent)))
            self._recent.clear()
        return True


class BulkJob:
    """One run of `SessionTerminationManager.terminate` / `iter_terminate`. Private."""

    def __init__(
        self,
        transport: Transport | None,
        *,
        user_ids: Source,
        user_logins: Source,
        group_ids: Source,
        batch_size: int,
        max_concurrency: int,
        on_progress: ProgressCallback | None,
    ) -> None:
        sources = {"user_ids": user_ids, "user_logins": user_logins, "group_ids": group_ids}
        for argument, source in sources.items():
            _check_source(source, argument)
        if all(source is None for source in sources.values()):
            raise ValueError("give at least one of user_ids, user_logins and group_ids")
        self._batch_size = _check_positive_int(batch_size, "batch_size")
        self._max_concurrency = _check_positive_int(max_concurrency, "max_concurrency")
        if on_progress is not None and not callable(on_progress):
            raise TypeError(f"on_progress must be callable, got {type(on_progress).__name__}")
        self._transport = transport
        self._sources: list[tuple[Field, Source]] = [(f, sources[f]) for f in FIELDS]
        self._on_progress = on_progress
        self._items = self._read_items()
        self._pending: _Batch | None = None
        self._rejected: list[Failure] = []
        self._seen: dict[Field, _Seen] = {f: _Seen() for f in FIELDS}
        self._stop_error: BoxError | None = None
        self.observer = CallObserver()
        self.budget = RetryBudget()
        self.duplicates = 0
        self._read = self._sent = self._terminated = self._failed = 0

    @property
    def stopped_by(self) -> BoxError | None:
        return self._stop_error

    # -- reading input ---------------------------------------------------------------------

    async def _read_items(self) -> AsyncGenerator[tuple[Field, object], None]:
        for field, source in self._sources:
            if source is None:
                continue
            if isinstance(source, AsyncIterable):
                async for value in source:
                    yield field, value
            else:
                for value in source:
                    yield field, value

    def _accept(self, field: Field, raw: object) -> str | None:
        """Normalise one value; a bad one is rejected, a duplicate counted. Returns the value to send."""
        try:
            value = normalise_login(raw, field) if field == "user_logins" else normalise_id(raw, field)
        except (TypeError, ValueError) as exc:
            error = exc if isinstance(exc, ValueError) else ValueError(str(exc))
            self._rejected.append(Failure(field, raw, error))
            return None
        if not self._seen[field].add(value, numeric=field != "user_logins"):
            self.duplicates += 1
            return None
        return value

    async def _next_batch(self) -> _Batch | None:
        """Read until a batch is full, the endpoint changes or input ends."""
        while True:
            try:
                field, raw = await anext(self._items)
            except StopAsyncIteration:
                batch, self._pending = self._pending, None
                return batch
            self._read += 1
            value = self._accept(field, raw)
            if value is None:
                continue
            kind: Literal["users", "groups"] = "groups" if field == "group_ids" else "users"
            ready = None
            if self._pending is not None and self._pending.kind != kind:
                ready, self._pending = self._pending, None
            if self._pending is None:
                self._pending = _Batch(kind, [])
            self._pending.items.append((field, value))
            if ready is not None:
                return ready
            if len(self._pending.items) >= self._batch_size:
                batch, self._pending = self._pending, None
                return batch

    # -- sending ---------------------------------------------------------------------------

    async def _post(self, kind: Literal["users", "groups"], items: list[Item]) -> None:
        if self._transport is None:
            raise RuntimeError("this job only plans batches: it has no transport")
        path, body = _request_of(kind, items)
        await self._transport.post_json(path, body, observer=self.observer, budget=self.budget)

    def _stop(self, error: BoxError) -> None:
        if self._stop_error is None:
            self._stop_error = error

    async def _settle(self, kind: Literal["users", "groups"], items: list[Item]) -> tuple[list[Item], list[Failure]]:
        """Send ``items``; on a poisoned batch, bisect. Returns what was terminated and what failed."""
        if self._stop_error is not None:
            return [], [Failure(f, v, self._stop_error) for f, v in items]
        try:
            await self._post(kind, items)
        except (PermissionDeniedError, AuthenticationError) as error:
            self._stop(error)
            return [], [Failure(f, v, error) for f, v in items]
        except BoxAPIError as error:
            too_large = _is_too_large(error)
            if not (too_large or isinstance(error, (BadRequestError, NotFoundError))) or len(items) == 1:
                return [], [Failure(f, v, error) for f, v in items]
            if too_large:
                self._batch_size = max(1, min(self._batch_size, len(items) // 2))
            mid = len(items) // 2
            done_a, failed_a = await self._settle(kind, items[:mid])
            done_b, failed_b = await self._settle(kind, items[mid:])
            return done_a + done_b, failed_a + failed_b
        except BoxError as error:
            return [], [Failure(f, v, error) for f, v in items]
        return items, []

    async def _run_batch(self, batch: _Batch) -> BatchResult:
        try:
            done, failed = await self._settle(batch.kind, batch.items)
        except Exception as error:  # noqa: BLE001 - a bug must not lose ids: they fail with it
            done, failed = [], [Failure(f, v, error) for f, v in batch.items]
        return self._result(batch.kind, done, failed)

    def _result(self, kind: BatchKind, done: list[Item], failed: list[Failure]) -> BatchResult:
        self._terminated += len(done)
        self._failed += len(failed)
        progress = Progress(
            terminated=self._terminated,
            failed=self._failed,
            sent=self._sent,
            read=self._read,
            duplicates=self.duplicates,
            requests=self.observer.requests,
            retries=self.observer.retries,
            rate_limited=self.observer.rate_limited,
        )
        return BatchResult(kind, tuple(done), tuple(failed), progress, self._stop_error)

    async def _report_progress(self, result: BatchResult) -> None:
        if self._on_progress is not None:
            outcome = self._on_progress(result.progress)
            if inspect.isawaitable(outcome):
                await outcome

    def _flush_rejected(self) -> BatchResult | None:
        if not self._rejected:
            return None
        rejected, self._rejected = self._rejected, []
        return self._result("invalid", [], rejected)

    async def plan(self) -> AsyncGenerator[tuple[str, dict[str, list[str]]] | Failure, None]:
        """Yield what `results` would send, without sending: ``(path, body)`` per batch, and each
        rejected input as a `Failure`. Duplicates are counted in `duplicates`."""
        try:
            while True:
                batch = await self._next_batch()
                for failure in self._rejected:
                    yield failure
                self._rejected.clear()
                if batch is None:
                    return
                yield _request_of(batch.kind, batch.items)
        finally:
            await self._shutdown(set())

    # -- the loop --------------------------------------------------------------------------

    async def results(self) -> AsyncGenerator[BatchResult, None]:
        """Run the job, yielding each batch's outcome as it completes."""
        tasks: set[asyncio.Task[BatchResult]] = set()
        exhausted = False
        try:
            while True:
                while not exhausted and len(tasks) < self._max_concurrency:
                    batch = await self._next_batch()
                    rejected = self._flush_rejected()
                    if rejected is not None:
                        await self._report_progress(rejected)
                        yield rejected
                    if batch is None:
                        exhausted = True
                    elif self._stop_error is not None:
                        unsent = self._result("unsent", [], [Failure(f, v, self._stop_error) for f, v in batch.items])
                        await self._report_progress(unsent)
                        yield unsent
                    else:
                        self._sent += len(batch.items)
                        tasks.add(asyncio.ensure_future(self._run_batch(batch)))
                if not tasks:
                    return
                done, tasks = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    result = task.result()
                    await self._report_progress(result)
                    yield result
        finally:
            await self._shutdown(tasks)

    async def _shutdown(self, tasks: set[asyncio.Task[BatchResult]]) -> None:
        """Cancel what is in flight and close the inputs; leave no task behind."""
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        await self._items.aclose()
        for _, source in self._sources:
            if inspect.isasyncgen(source):  # ours to finish: nobody else can resume it
                await source.aclose()
