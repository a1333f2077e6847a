"""The session-termination manager: ``client.session_termination``, Box's two calls and the bulk call."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Iterable

from .._errors import BoxError
from .._sending import Sender
from .._tasks import cancelled_once
from .._validation import normalise_id_list, normalise_login_list
from ._batching import Batcher, Source
from ._endpoints import GROUPS_PATH, USERS_PATH, SessionTerminationMessage, groups_body, send, users_body
from ._report import BatchResult, TerminationReport
from ._runner import DEFAULT_BATCH_SIZE, DEFAULT_MAX_CONCURRENCY, BulkJob, ProgressCallback

__all__ = ["SessionTerminationManager"]


class SessionTerminationManager:
    """Terminates users' and groups' sessions. Reached as ``client.session_termination``."""

    def __init__(self, sender: Sender) -> None:
        self._sender = sender

    async def terminate_users_sessions(
        self,
        user_ids: Iterable[str | int] | None = None,
        user_logins: Iterable[str] | None = None,
    ) -> SessionTerminationMessage:
        """Terminate the sessions of the given users in one request.

        The JSON body always carries both ``user_ids`` and ``user_logins``, as Box's SDKs send it.
        Duplicates are sent once. For any number of ids, in batches, use `terminate`.

        Args:
            user_ids: User ids, as ``str`` of digits or ``int``.
            user_logins: User logins (email addresses).

        Returns:
            Box's message that the termination jobs were created.

        Raises:
            TypeError, ValueError: an argument is of the wrong type or holds a bad value, or both
                are empty; raised before anything is sent.
            BoxError: the request failed (see the errors module for the classes).
        """
        ids = normalise_id_list(user_ids, "user_ids")
        logins = normalise_login_list(user_logins, "user_logins")
        if not ids and not logins:
            raise ValueError("user_ids and user_logins are both empty: give at least one user")
        return await self._send_one(USERS_PATH, users_body(ids, logins), len(ids) + len(logins))

    async def terminate_groups_sessions(self, group_ids: Iterable[str | int]) -> SessionTerminationMessage:
        """Terminate the sessions of every member of the given groups in one request.

        Args:
            group_ids: Group ids, as ``str`` of digits or ``int``.

        Returns:
            Box's message that the termination jobs were created.

        Raises:
            TypeError, ValueError: ``group_ids`` is of the wrong type, holds a bad value or is
                empty; raised before anything is sent.
            BoxError: the request failed.
        """
        ids = normalise_id_list(group_ids, "group_ids")
        if not ids:
            raise ValueError("group_ids is empty: give at least one group id")
        return await self._send_one(GROUPS_PATH, groups_body(ids), len(ids))

    async def _send_one(self, path: str, body: dict[str, list[str]], values: int) -> SessionTerminationMessage:
        """One request of a single call; its values counted by outcome."""
        try:
            # Its own task, cancelled once: a second cancel of the caller cannot cut the
            # clean-up of its connection short (see `cancelled_once`).
            message = await cancelled_once(send(self._sender, path, body))
        except BoxError:
            self._sender.telemetry.ids(terminated=0, failed=values)
            raise
        self._sender.telemetry.ids(terminated=values, failed=0)
        return message

    async def terminate(
        self,
        *,
        user_ids: Source = None,
        user_logins: Source = None,
        group_ids: Source = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        on_progress: ProgressCallback | None = None,
    ) -> TerminationReport:
        """Terminate the sessions of any number of users and groups, and account for every input.

        Inputs are read lazily, in order (user ids, user logins, group ids), checked,
        de-duplicated and sent in batches, at most ``max_concurrency`` at a time, paced by the
        client's rate limit and shared cool-down. See the `TerminationReport` for what comes back:
        every distinct input ends in ``terminated`` or in ``failed`` with its reason.

        Args:
            user_ids: User ids (``str`` of digits or ``int``): any iterable or async iterable.
            user_logins: User logins (email addresses): any iterable or async iterable.
            group_ids: Group ids: any iterable or async iterable.
            batch_size: Ids per request (ids and logins together). Default 100: Box documents no
                maximum; 100 keeps requests small, carries 100,000 ids a minute at Box's rate,
                and isolating a bad id costs at most about 14 extra requests. A server answering
                "too large" halves it for the rest of the job.
            max_concurrency: Batches in flight at once (default 16).
            on_progress: Called (or awaited, if it returns an awaitable) after each batch with a
                `Progress` of the counts so far.

        Returns:
            The report. A fatal answer (403, or 401 after a fresh token) stops the job early and
            is in ``report.stopped_by``; the report is still returned, not raised.

        Raises:
            TypeError, ValueError: an argument itself is wrong (a bare string for a list, no
                input at all, a batch size below 1); raised before anything is sent. Bad
                values inside the inputs are not raised: they are reported.
            asyncio.CancelledError: the job was cancelled; nothing is left running.
            Exception: whatever ``on_progress`` (or an input iterator) raised: the job stops
                sending, in-flight batches are cancelled, and the report so far, with every batch
                Box accepted, is attached to the exception as ``termination_report``.
        """
        job = self._job(user_ids, user_logins, group_ids, batch_size, max_concurrency, on_progress)
        clock = self._sender.clock
        started = clock.monotonic()
        report = TerminationReport()
        try:
            async with contextlib.aclosing(job.results()) as results:
                async for result in results:
                    report.add(result)
        except BaseException as exc:
            job.end_span(exc)
            if isinstance(exc, Exception):
                # on_progress (or an input iterator) raised: the job stopped sending; what Box
                # accepted so far must not be lost with it, batches that ended unyielded included.
                for result in job.unyielded:
                    report.add(result)
                _attach_report(exc, _finished(report, job, clock.monotonic() - started))
            raise
        job.end_span()
        return _finished(report, job, clock.monotonic() - started)

    def iter_terminate(
        self,
        *,
        user_ids: Source = None,
        user_logins: Source = None,
        group_ids: Source = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        on_progress: ProgressCallback | None = None,
    ) -> AsyncGenerator[BatchResult, None]:
        """Like `terminate`, but yield each batch's `BatchResult` as it completes.

        For jobs that stream results to a file instead of holding them. The arguments are
        checked at once, before anything is sent. To stop early, close the iterator (``async
        with contextlib.aclosing(...)``): in-flight batches are cancelled.
        """
        return _traced(self._job(user_ids, user_logins, group_ids, batch_size, max_concurrency, on_progress))

    def _job(  # noqa: PLR0917 - private, mirrors the public keyword arguments one to one
        self,
        user_ids: Source,
        user_logins: Source,
        group_ids: Source,
        batch_size: int,
        max_concurrency: int,
        on_progress: ProgressCallback | None,
    ) -> BulkJob:
        batcher = Batcher(user_ids=user_ids, user_logins=user_logins, group_ids=group_ids, batch_size=batch_size)
        return BulkJob(self._sender, batcher, max_concurrency=max_concurrency, on_progress=on_progress)


async def _traced(job: BulkJob) -> AsyncGenerator[BatchResult, None]:
    """The job's results, its span ended when they end (or when the iterator is closed)."""
    try:
        async with contextlib.aclosing(job.results()) as results:
            async for result in results:
                yield result
    except GeneratorExit:  # the caller closed it early: a job it stopped, not one that failed
        job.end_span()
        raise
    except BaseException as exc:
        job.end_span(exc)
        raise
    job.end_span()


def _finished(report: TerminationReport, job: BulkJob, elapsed: float) -> TerminationReport:
    report.duplicates = job.duplicates
    report.requests = job.observer.requests
    report.retries = job.observer.retries
    report.rate_limited = job.observer.rate_limited
    report.stopped_by = job.stopped_by
    report.elapsed = elapsed
    return report


def _attach_report(error: Exception, report: TerminationReport) -> None:
    """Make the report so far reachable from ``error`` as ``error.termination_report``."""
    with contextlib.suppress(AttributeError, TypeError):  # an exception type with __slots__
        error.termination_report = report  # type: ignore[attr-defined]
        if hasattr(error, "add_note"):  # Python 3.11+
            error.add_note("box_sessions: the report so far, with every batch Box accepted, is .termination_report")
