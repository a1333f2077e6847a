"""The ``terminate`` command: one bulk job run through the client, or planned and printed (``--dry-run``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, TextIO
from urllib.parse import urlsplit

from .._client import DEFAULT_BASE_URL, DEFAULT_RATE_LIMIT, BoxClient
from .._errors import AuthenticationError
from .._pacing import RateLimit
from .._termination import Batcher, Failure
from .._termination._report import counted
from .._validation import check_secure_url
from ._credentials import credentials_from_env
from ._exit import EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError
from ._inputs import Inputs
from ._journal import Evidence, JobIdentity, Journal
from ._outputs import check_outputs
from ._progress import ProgressDisplay
from ._report_file import ReportFile
from ._signals import sigterm_raises, until_signal
from ._summary import Summary

if TYPE_CHECKING:
    from ..redis import RedisShare

__all__ = ["cmd_terminate", "exit_status", "print_summary", "run_job"]


async def run_job(
    client: BoxClient,
    inputs: Inputs,
    *,
    batch_size: int,
    max_concurrency: int,
    journal: Journal | None,
    report: ReportFile | None,
    err: TextIO,
) -> Summary:
    """Stream a bulk job through the client, writing journal, report and progress as batches complete.

    SIGINT or SIGTERM stops the job (the batches in flight are cancelled; every batch that
    completed is recorded) and is returned as the summary's ``signal``; so is a journal or report
    that cannot be written any more, as its ``output_error``.
    """
    summary = Summary(total=inputs.total, journal=journal)
    display = ProgressDisplay(err, summary)
    sources = {field: _counted(values, summary) for field, values in inputs.sources.items()}
    if journal is not None:
        on_skip = _on_skip(report, display, summary)
        sources = {field: journal.skip_done(field, values, on_skip) for field, values in sources.items()}
    started = time.monotonic()
    results = client.session_termination.iter_terminate(
        user_ids=sources.get("user_ids"),
        user_logins=sources.get("user_logins"),
        group_ids=sources.get("group_ids"),
        batch_size=batch_size,
        max_concurrency=max_concurrency,
        on_progress=display,
    )

    async def consume() -> None:
        async with contextlib.aclosing(results):  # leaving early cancels the batches in flight
            async for result in results:
                if journal is not None:
                    journal.record(result)
                if report is not None:
                    report.record(result)
                summary.add(result)

    try:
        _, summary.signal = await until_signal(consume())
        if report is not None:
            report.flush()  # the rows of skipped values, when no batch came after them
    except UsageError as exc:  # the journal or the report cannot be written any more
        summary.output_error = exc
    finally:
        display.finish()
        summary.elapsed = time.monotonic() - started
    return summary


def _counted(values: Iterable[object], summary: Summary) -> Iterator[object]:
    """``values``, counted in ``summary.read`` as the job reads them: where a stopped job left its input."""
    for value in values:
        summary.read += 1
        yield value


def _on_skip(
    report: ReportFile | None, display: ProgressDisplay, summary: Summary
) -> Callable[[str, str, Evidence], None]:
    """What to do for each value the journal skips: its one report row, with its original evidence, and the progress."""

    def on_skip(field: str, value: str, evidence: Evidence) -> None:
        if report is not None:
            report.line(
                {
                    "field": field,
                    "value": value,
                    "status": "terminated",
                    "error": None,
                    "request_id": evidence.request_id,
                    "accepted_at": evidence.accepted_at,
                    "journal": True,
                }
            )
        summary.accepted_at(evidence.accepted_at)
        display.tick()

    return on_skip


def print_summary(summary: Summary, out: TextIO, err: TextIO, *, as_json: bool = False) -> None:
    """The summary on ``out``, as a paragraph or as one JSON object; why the job stopped early on ``err``."""
    out.write((json.dumps(summary.to_json()) if as_json else summary.text()) + "\n")
    out.flush()
    if summary.signal is not None:  # the summary says what was not reached and how to finish
        err.write(f"box-sessions: interrupted by {signal.Signals(summary.signal).name}\n")
    elif isinstance(summary.stopped_by, AuthenticationError):
        err.write(
            f"box-sessions: Box refused the credentials ({summary.stopped_by}); check BOX_DEVELOPER_TOKEN or "
            "BOX_CLIENT_ID, BOX_CLIENT_SECRET and the subject, and run the same command again\n"
        )
    elif summary.stopped_by is not None:
        err.write(f"box-sessions: stopped early: {summary.stopped_by}\n")


def exit_status(summary: Summary) -> int:
    """0 when every input was terminated; 1 when some failed; 2 when Box refused the credentials;
    128 + the signal's number when a signal stopped the job (130 for Ctrl-C, 143 for SIGTERM)."""
    if summary.signal is not None:
        return 128 + summary.signal
    if isinstance(summary.stopped_by, AuthenticationError):
        return EXIT_USAGE
    return EXIT_OK if summary.ok else EXIT_FAILED


async def _dry_run(inputs: Inputs, batch_size: int, out: TextIO, err: TextIO, *, as_json: bool) -> int:
    """Print each batch a job would send, and each invalid input, as JSON lines on ``out``; send nothing.

    ``out`` holds nothing but JSON lines (``jq`` reads it): the summary goes to ``err``, unless
    ``as_json`` makes it one more JSON object, the last line of ``out``.
    """
    job = Batcher(
        user_ids=inputs.sources.get("user_ids"),
        user_logins=inputs.sources.get("user_logins"),
        group_ids=inputs.sources.get("group_ids"),
        batch_size=batch_size,
    )
    batches = ids = invalid = 0
    async for planned in job.plan():
        if isinstance(planned, Failure):
            invalid += 1
            out.write(json.dumps({"invalid": planned.to_dict()}) + "\n")
            continue
        path, body = planned
        batches += 1
        ids += sum(len(v) for v in body.values())
        out.write(json.dumps({"batch": batches, "endpoint": f"/2.0{path}", "body": body}) + "\n")
    if as_json:
        counts = {"batches": batches, "ids": ids, "invalid": invalid, "duplicates": job.duplicates}
        out.write(json.dumps({"dry_run": True, "ok": not invalid, **counts}) + "\n")
    else:
        err.write(
            f"Dry run: {counted(batches, 'batch', 'batches')}, {counted(ids, 'id')}, {invalid:,} invalid, "
            f"{counted(job.duplicates, 'duplicate')}; nothing sent.\n"
        )
    return EXIT_FAILED if invalid else EXIT_OK


def _base_url(option: str | None, environ: Mapping[str, str]) -> str:
    """The API host from ``--base-url``, else ``BOX_BASE_URL``, else Box's: checked as the client checks
    it, in the one spelling a journal records.

    Raises:
        UsageError: the URL is not https (nor http to a loopback host); the message names where it came from.
    """
    if option is not None:  # even empty: an unset variable in `--base-url "$URL"` must not mean Box itself
        url, name = option, "--base-url"
    else:
        url, name = environ.get("BOX_BASE_URL", "").strip(), "BOX_BASE_URL"
        if not url:
            return DEFAULT_BASE_URL
    try:
        return str(check_secure_url(url, name)).rstrip("/")
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None


def _rate_limit(rate: float | None) -> RateLimit | None:
    if rate is None:
        return DEFAULT_RATE_LIMIT
    if rate == 0:
        return None
    return RateLimit(requests_per_minute=rate, min_requests_per_minute=min(rate, 30.0))


def _redis_share(option: str | None, environ: Mapping[str, str]) -> RedisShare | None:
    """The share every job of this Box app uses, from ``--redis`` or ``BOX_REDIS_URL``; ``None`` without either.

    Raises:
        UsageError: the URL is not a Redis URL, ``--redis`` holds a password (a command line is
            visible to the machine's other users), or the ``redis`` extra is not installed.
    """
    url, name = (
        (option, "--redis") if option is not None else (environ.get("BOX_REDIS_URL", "").strip(), "BOX_REDIS_URL")
    )
    if not url:
        return None
    if name == "--redis" and urlsplit(url).password is not None:
        raise UsageError("--redis must not hold a password (other users can read a command line): set BOX_REDIS_URL")
    try:
        from ..redis import RedisShare  # noqa: PLC0415 - the redis extra is needed only with a share
    except ImportError:
        raise UsageError(
            f'{name} needs the redis extra: from a checkout, pip install ".[redis]"; '
            'pip install "box-sessions[redis]" once the package is published'
        ) from None
    try:
        return RedisShare(url)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{name}: {exc}") from None


def cmd_terminate(args: argparse.Namespace) -> int:
    """The ``terminate`` command: exit 0 when every input is terminated, 1 when some failed.

    Everything a user can get wrong (inputs, credentials, base URL, journal, report file, a report
    or journal naming a file the job reads) is checked before the first request. Whatever it
    opened is closed on every way out, a usage error found after opening it included.
    """
    check_outputs(args)
    with sigterm_raises(), contextlib.ExitStack() as opened:
        inputs = opened.enter_context(contextlib.closing(Inputs.from_args(args, spool_stdin=bool(args.journal))))
        if args.dry_run:
            return asyncio.run(_dry_run(inputs, args.batch_size, sys.stdout, sys.stderr, as_json=args.json))
        credentials = credentials_from_env(os.environ)
        base_url = _base_url(args.base_url, os.environ)
        journal = None
        if args.journal:
            assert inputs.digest is not None  # noqa: S101 - with a journal, stdin is spooled and hashed too
            job = JobIdentity(inputs=inputs.digest, base_url=base_url, credentials=credentials.subject)
            journal = opened.enter_context(contextlib.closing(Journal(args.journal, job, err=sys.stderr)))
        report = (
            opened.enter_context(contextlib.closing(ReportFile(args.report, err=sys.stderr))) if args.report else None
        )
        share = _redis_share(args.redis, os.environ)
        client = BoxClient(credentials.auth, base_url=base_url, rate_limit=_rate_limit(args.rate), shared=share)

        async def run() -> Summary:
            async with contextlib.AsyncExitStack() as closing:
                if share is not None:
                    await closing.enter_async_context(share)
                await closing.enter_async_context(client)
                return await run_job(
                    client,
                    inputs,
                    batch_size=args.batch_size,
                    max_concurrency=args.max_concurrency,
                    journal=journal,
                    report=report,
                    err=sys.stderr,
                )

        summary = asyncio.run(run())
        if summary.last is None and inputs.total is None and not args.allow_empty:
            # Stdin streamed no value at all (files are checked before anything is sent).
            raise UsageError("stdin held no value to terminate; pass --allow-empty to let an empty job succeed")
        # With the report on stdout the paragraph goes to stderr; the JSON summary stays a pipeline's last line.
        out = sys.stderr if report is not None and report.to_stdout and not args.json else sys.stdout
        print_summary(summary, out, sys.stderr, as_json=args.json)
        if summary.output_error is not None:
            raise summary.output_error
        return exit_status(summary)
