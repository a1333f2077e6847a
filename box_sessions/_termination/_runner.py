"""The bulk runner: sends a job's batches, at most ``max_concurrency`` at once, and accounts for every input.

Every distinct input value ends in exactly one place of the report, ``terminated`` or ``failed``:

- an invalid value fails with a `ValueError` and is never sent (see `_batching`);
- a batch answered 400 or 404 (one bad id poisons a request) is split in halves and retried, down
  to single ids, so the good ids go through and each bad one fails with Box's error; a 400 saying
  the batch is too large (or a 413) also halves the batch size for the rest of the job;
- a batch that still fails after the sender's retries fails with that error; the job goes on.
  The job's retry budget keeps a failing Box from being hammered: once spent, batches get one
  attempt each;
- a 403, or a 401 after a fresh token, would fail every further request, and so would a client
  that was closed (`BoxClient.aclose`) under the job: the job stops sending, fails every unsent
  value with that error, and still returns the report.

A new batch is read only when a slot is free, so a generator of a million ids is never held whole.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import re
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import TypeAlias

from .._errors import (
    AuthenticationError,
    BadRequestError,
    BoxAPIError,
    BoxError,
    ClientClosedError,
    NotFoundError,
    PermissionDeniedError,
)
from .._sending import CallObserver, RetryBudget, Sender
from .._tasks import cancel_and_wait, finish
from .._telemetry import JobSpan
from .._validation import check_positive_int
from ._batching import Batch, Batcher
from ._endpoints import Item, Kind, request_of, send
from ._report import Acceptance, BatchKind, BatchResult, Failure, Progress

__all__ = ["DEFAULT_BATCH_SIZE", "DEFAULT_MAX_CONCURRENCY", "BulkJob", "ProgressCallback"]

#: Ids in one request. Box documents no maximum. 100 keeps a request small (about 2 KB), lets
#: Box's documented 1,000 calls a minute carry 100,000 ids a minute, and bounds the cost of a bad
#: id: isolating one takes at most 2 * log2(100), about 14, extra requests. A server that answers
#: "too large" halves it for the rest of the job.
DEFAULT_BATCH_SIZE = 100
#: Batches in flight at once. At Box's rate (about 17 requests a second) and a few hundred
#: milliseconds per answer, 4 to 8 requests are in flight; 16 leaves room for slow answers while the
#: rate limiter, not the concurrency, sets the pace.
DEFAULT_MAX_CONCURRENCY = 16

ProgressCallback: TypeAlias = Callable[[Progress], "Awaitable[None] | None"]

_TOO_LARGE = re.compile(r"too (large|many|long|big)|maximum|exceed|limit", re.IGNORECASE)


def _is_too_large(error: BoxAPIError) -> bool:
    if error.status == 413:
        return True
    return error.status == 400 and bool(_TOO_LARGE.search(f"{error.code or ''} {error.message}"))


class BulkJob:
    """One run of `SessionTerminationManager.terminate` / `iter_terminate`. Private.

    Args:
        sender: Sends the requests.
        batcher: Reads the inputs into batches.
        max_concurrency: Batches in flight at once.
        on_progress: Called (or awaited) with a `Progress` after each batch.
        span: The job's span: the requests of each batch are its children.
    """

    def __init__(
        self,
        sender: Sender,
        batcher: Batcher,
        *,
        max_concurrency: int,
        on_progress: ProgressCallback | None,
        span: JobSpan | None = None,
    ) -> None:
        self._max_concurrency = check_positive_int(max_concurrency, "max_concurrency")
        if on_progress is not None and not callable(on_progress):
            raise TypeError(f"on_progress must be callable, got {type(on_progress).__name__}")
        self._sender = sender
        self._batcher = batcher
        self._on_progress = on_progress
        self._span = span or sender.telemetry.job()
        self._stop_error: BoxError | None = None
        self.observer = CallObserver()
        self.budget = RetryBudget()
        self._sent = self._terminated = self._failed = 0
        self.unyielded: list[BatchResult] = []
        """Results of batches that ended after the job stopped yielding (see `results`)."""

    @property
    def stopped_by(self) -> BoxError | None:
        """The fatal error that stopped the job, if any."""
        return self._stop_error

    @property
    def duplicates(self) -> int:
        """Input values dropped because they were read before."""
        return self._batcher.duplicates

    # -- sending ---------------------------------------------------------------------------

    def _stop(self, error: BoxError) -> None:
        if self._stop_error is None:
            self._stop_error = error

    async def _settle(self, kind: Kind, items: list[Item]) -> tuple[list[Acceptance], list[Failure]]:
        """Send ``items``; on a poisoned batch, bisect. Returns the requests Box accepted and what failed."""
        if self._stop_error is not None:
            return [], [Failure(f, v, self._stop_error) for f, v in items]
        try:
            path, body = request_of(kind, items)
            answer = await send(self._sender, path, body, observer=self.observer, budget=self.budget)
        except (PermissionDeniedError, AuthenticationError, ClientClosedError) as error:
            self._stop(error)
            return [], [Failure(f, v, error) for f, v in items]
        except BoxAPIError as error:
            too_large = _is_too_large(error)
            if not (too_large or isinstance(error, (BadRequestError, NotFoundError))) or len(items) == 1:
                return [], [Failure(f, v, error) for f, v in items]
            if too_large:
                self._batcher.shrink(len(items) // 2)
            mid = len(items) // 2
            accepted_a, failed_a = await self._settle(kind, items[:mid])
            accepted_b, failed_b = await self._settle(kind, items[mid:])
            return accepted_a + accepted_b, failed_a + failed_b
        except BoxError as error:
            return [], [Failure(f, v, error) for f, v in items]
        return [Acceptance(answer.request_id, answer.accepted_at, tuple(items))], []

    async def _run_batch(self, batch: Batch) -> BatchResult:
        try:
            with self._span.current():
                accepted, failed = await self._settle(batch.kind, batch.items)
        except Exception as error:  # noqa: BLE001 - a bug must not lose ids: they fail with it
            accepted, failed = [], [Failure(f, v, error) for f, v in batch.items]
        return self._result(batch.kind, accepted, failed)

    def _result(self, kind: BatchKind, accepted: list[Acceptance], failed: list[Failure]) -> BatchResult:
        done = [item for acceptance in accepted for item in acceptance.terminated]
        self._terminated += len(done)
        self._failed += len(failed)
        self._sender.telemetry.ids(terminated=len(done), failed=len(failed))
        progress = Progress(
            terminated=self._terminated,
            failed=self._failed,
            sent=self._sent,
            read=self._batcher.read,
            duplicates=self._batcher.duplicates,
            requests=self.observer.requests,
            retries=self.observer.retries,
            rate_limited=self.observer.rate_limited,
        )
        return BatchResult(kind, tuple(done), tuple(failed), progress, self._stop_error, tuple(accepted))

    async def _report_progress(self, result: BatchResult) -> None:
        if self._on_progress is not None:
            outcome = self._on_progress(result.progress)
            if inspect.isawaitable(outcome):
                await outcome

    # -- the loop --------------------------------------------------------------------------

    async def results(self) -> AsyncGenerator[BatchResult, None]:
        """Run the job, yielding each batch's outcome as it completes.

        ``on_progress`` is called after the consumer has taken each result, so a callback that
        raises never hides a batch Box already accepted.
        """
        self._sender.check_loop()
        tasks: set[asyncio.Task[BatchResult]] = set()
        # Batches that ended, in the order they ended: told by each task's done callback, so that
        # waiting for the next costs one event, not a wait registered on every batch in flight.
        ended: collections.deque[asyncio.Task[BatchResult]] = collections.deque()
        any_ended = asyncio.Event()

        def on_end(task: asyncio.Task[BatchResult]) -> None:
            ended.append(task)
            any_ended.set()

        exhausted = False
        try:
            while True:
                while not exhausted and len(tasks) < self._max_concurrency:
                    batch = await self._batcher.next_batch()
                    rejected = self._batcher.take_rejected()
                    if rejected:
                        invalid = self._result("invalid", [], rejected)
                        yield invalid
                        await self._report_progress(invalid)
                    if batch is None:
                        exhausted = True
                    elif self._stop_error is not None:
                        unsent = self._result("unsent", [], [Failure(f, v, self._stop_error) for f, v in batch.items])
                        yield unsent
                        await self._report_progress(unsent)
                    else:
                        self._sent += len(batch.items)
                        task = asyncio.ensure_future(self._run_batch(batch))
                        task.add_done_callback(on_end)
                        tasks.add(task)
                if not tasks:
                    return
                if not ended:
                    any_ended.clear()
                    await any_ended.wait()
                for _ in range(len(ended)):  # those that ended by now; then refill
                    task = ended.popleft()
                    tasks.discard(task)
                    result = task.result()
                    yield result
                    await self._report_progress(result)
        finally:
            await self._shutdown(tasks)
            # Batches that ended but were never yielded (``on_progress`` raised, or the consumer
            # stopped): Box may have accepted them, so they are kept for the report so far. A task
            # leaves ``tasks`` only when it is yielded, so ``tasks`` holds every one of them.
            self.unyielded = [
                task.result() for task in tasks if task.done() and not task.cancelled() and task.exception() is None
            ]

    def end_span(self, error: BaseException | None = None) -> None:
        """End the job's span with its counts (``error``: what stopped it, if not a fatal answer)."""
        self._span.end(
            terminated=self._terminated,
            failed=self._failed,
            requests=self.observer.requests,
            retries=self.observer.retries,
            rate_limited=self.observer.rate_limited,
            stopped_by=self._stop_error or error,
        )

    async def _shutdown(self, tasks: set[asyncio.Task[BatchResult]]) -> None:
        """Cancel what is in flight and close the inputs; leave no task behind, however often cancelled."""
        try:
            await cancel_and_wait(tasks)
        finally:
            await finish(self._batcher.aclose())
