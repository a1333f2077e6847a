"""The ``box-sessions`` command line: ``terminate``, ``fake-server`` and ``demo``.

Exit codes: 0 every input terminated, 1 some failed, 2 usage or credential error, 130 interrupted.
Secrets come from the environment only, never from flags.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import sqlite3
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import attrs

from ._auth import BoxAuth, CCGAuth, DeveloperTokenAuth
from ._client import DEFAULT_BASE_URL, DEFAULT_RATE_LIMIT, BoxClient
from ._termination import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_CONCURRENCY,
    Batcher,
    BatchResult,
    Failure,
    Progress,
    Tally,
    summary_text,
)
from ._transport import RateLimit
from ._version import __version__

if TYPE_CHECKING:
    from .testing import FakeBox

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """A mistake in the command or its environment: one sentence on stderr, exit 2."""


# -- input ---------------------------------------------------------------------------------


def _lines(stream: TextIO) -> Iterator[str]:
    """Values of a file: one per line; blank lines and ``#`` comments skipped."""
    with contextlib.closing(stream) if stream is not sys.stdin else contextlib.nullcontext(stream):
        for line in stream:
            value = line.split("#", 1)[0].strip()
            if value:
                yield value


def _open_input(path: str, option: str) -> TextIO:
    if path == "-":
        return sys.stdin
    try:
        return Path(path).open(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{option}: cannot read {path!r}: {exc.strerror or exc}") from None


@attrs.define
class Inputs:
    """The three inputs of a job, each a lazy iterator of strings."""

    sources: dict[str, Iterable[str]]
    total: int | None  # known when no input is stdin

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Inputs:
        spec = {
            "user_ids": (args.user_id, args.user_ids, "--user-ids"),
            "user_logins": (args.user_login, args.user_logins, "--user-logins"),
            "group_ids": (args.group_id, args.group_ids, "--group-ids"),
        }
        if sum(path == "-" for _, paths, _ in spec.values() for path in paths) > 1:
            raise UsageError("only one input can be read from stdin ('-')")
        sources: dict[str, Iterable[str]] = {}
        total: int | None = 0
        for field, (values, paths, option) in spec.items():
            streams = [_open_input(path, option) for path in paths]
            if not values and not streams:
                continue
            sources[field] = itertools.chain(values, *(_lines(s) for s in streams))
            if total is not None:
                if any(s is sys.stdin for s in streams):
                    total = None
                else:
                    total += len(values) + sum(sum(1 for _ in _lines(_open_input(p, option))) for p in paths)
        if not sources:
            raise UsageError("nothing to terminate: give --user-ids, --user-logins, --group-ids or --user-id ...")
        return cls(sources, total)


def auth_from_env(env: Mapping[str, str]) -> BoxAuth:
    """Credentials from the environment: a developer token, or CCG client id and secret."""
    token = env.get("BOX_DEVELOPER_TOKEN", "").strip()
    client_id, secret = env.get("BOX_CLIENT_ID", "").strip(), env.get("BOX_CLIENT_SECRET", "").strip()
    enterprise, user = env.get("BOX_ENTERPRISE_ID", "").strip(), env.get("BOX_USER_ID", "").strip()
    if token and (client_id or secret):
        raise UsageError("set either BOX_DEVELOPER_TOKEN or BOX_CLIENT_ID/BOX_CLIENT_SECRET, not both")
    if token:
        return DeveloperTokenAuth(token)
    if not (client_id or secret):
        raise UsageError(
            "no credentials: set BOX_DEVELOPER_TOKEN, or BOX_CLIENT_ID, BOX_CLIENT_SECRET and "
            "BOX_ENTERPRISE_ID (or BOX_USER_ID)"
        )
    if not (client_id and secret):
        raise UsageError("BOX_CLIENT_ID and BOX_CLIENT_SECRET must both be set")
    if bool(enterprise) == bool(user):
        raise UsageError("set exactly one of BOX_ENTERPRISE_ID and BOX_USER_ID with the client credentials")
    try:
        return CCGAuth(
            client_id=client_id, client_secret=secret, enterprise_id=enterprise or None, user_id=user or None
        )
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None


# -- journal, report file, progress display --------------------------------------------------


class Journal:
    """Each batch's outcome in SQLite, committed when the batch completes, so a rerun resumes.

    A value recorded as terminated is skipped by the next run of the same job; failed values are
    tried again.
    """

    def __init__(self, path: str) -> None:
        try:
            self._db = sqlite3.connect(path)
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS outcomes (field TEXT NOT NULL, value TEXT NOT NULL, "
                "status TEXT NOT NULL, error TEXT, PRIMARY KEY (field, value))"
            )
            self._db.commit()
        except sqlite3.Error as exc:
            raise UsageError(f"--journal: cannot use {path!r} as a journal: {exc}") from None
        self.skipped = 0

    def is_done(self, field: str, value: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM outcomes WHERE field = ? AND value = ? AND status = 'terminated'", (field, value)
        ).fetchone()
        return row is not None

    def skip_done(self, field: str, values: Iterable[str], on_skip: Callable[[str, str], None]) -> Iterator[str]:
        for value in values:
            if self.is_done(field, value):
                self.skipped += 1
                on_skip(field, value)
            else:
                yield value

    def record(self, result: BatchResult) -> None:
        rows: list[tuple[str, str, str, str | None]] = [(f, v, "terminated", None) for f, v in result.terminated]
        rows += [(f.field, str(f.value), "failed", str(f.error)) for f in result.failed if isinstance(f.value, str)]
        with self._db:  # one transaction per batch
            self._db.executemany("INSERT OR REPLACE INTO outcomes VALUES (?, ?, ?, ?)", rows)

    def close(self) -> None:
        self._db.close()


class ReportFile:
    """JSON lines, one per input value, written as batches complete."""

    def __init__(self, path: str) -> None:
        try:
            self._file = Path(path).open("w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise UsageError(f"--report: cannot write {path!r}: {exc.strerror or exc}") from None

    def line(self, data: dict[str, Any]) -> None:
        self._file.write(json.dumps(data) + "\n")

    def record(self, result: BatchResult) -> None:
        for field, value in result.terminated:
            self.line({"field": field, "value": value, "status": "terminated", "error": None})
        for failure in result.failed:
            data = failure.to_dict()
            self.line({"field": data["field"], "value": data["value"], "status": "failed", "error": data["error"]})
        self._file.flush()

    def close(self) -> None:
        self._file.close()


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


# -- running a job ---------------------------------------------------------------------------


@attrs.define
class Summary:
    """What the command prints at the end; built from the streamed results, not held ids."""

    tally: Tally = attrs.field(factory=Tally)
    last: Progress | None = None
    stopped_by: BaseException | None = None

    def add(self, result: BatchResult) -> None:
        self.tally.add(result)
        self.stopped_by = result.stopped_by
        self.last = result.progress

    def text(self, elapsed: float, skipped: int) -> str:
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


async def run_job(
    client: BoxClient,
    inputs: Inputs,
    *,
    batch_size: int,
    max_concurrency: int,
    journal: Journal | None,
    report: ReportFile | None,
    out: TextIO,
    err: TextIO,
) -> tuple[Summary, float]:
    """Stream a bulk job through the client, writing journal, report and progress as batches complete."""
    sources: dict[str, Iterable[str]] = dict(inputs.sources)
    if journal is not None:

        def on_skip(field: str, value: str) -> None:
            if report is not None:
                report.line({"field": field, "value": value, "status": "terminated", "error": None, "journal": True})

        sources = {field: journal.skip_done(field, values, on_skip) for field, values in sources.items()}
    display = ProgressDisplay(err, inputs.total)
    summary = Summary()
    started = time.monotonic()
    results = client.session_termination.iter_terminate(
        user_ids=sources.get("user_ids"),
        user_logins=sources.get("user_logins"),
        group_ids=sources.get("group_ids"),
        batch_size=batch_size,
        max_concurrency=max_concurrency,
        on_progress=display,
    )
    try:
        async with contextlib.aclosing(results):
            async for result in results:
                if journal is not None:
                    journal.record(result)
                if report is not None:
                    report.record(result)
                summary.add(result)
    finally:
        display.finish()
    out.write(summary.text(time.monotonic() - started, journal.skipped if journal else 0) + "\n")
    if summary.stopped_by is not None:
        err.write(f"box-sessions: stopped early: {summary.stopped_by}\n")
    return summary, time.monotonic() - started


async def _dry_run(inputs: Inputs, batch_size: int, out: TextIO) -> int:
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
    out.write(
        f"Dry run: {batches:,} batches, {ids:,} ids, {invalid:,} invalid, {job.duplicates:,} duplicates; "
        "nothing sent.\n"
    )
    return EXIT_FAILED if invalid else EXIT_OK


def _rate_limit(rate: float | None) -> RateLimit | None:
    if rate is None:
        return DEFAULT_RATE_LIMIT
    if rate == 0:
        return None
    return RateLimit(requests_per_minute=rate, min_requests_per_minute=min(rate, 30.0))


def _cmd_terminate(args: argparse.Namespace) -> int:
    inputs = Inputs.from_args(args)
    if args.dry_run:
        return asyncio.run(_dry_run(inputs, args.batch_size, sys.stdout))
    auth = auth_from_env(os.environ)
    journal = Journal(args.journal) if args.journal else None
    report = ReportFile(args.report) if args.report else None
    try:
        client = BoxClient(auth, base_url=args.base_url, rate_limit=_rate_limit(args.rate))
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None

    async def run() -> int:
        async with client:
            summary, _ = await run_job(
                client,
                inputs,
                batch_size=args.batch_size,
                max_concurrency=args.max_concurrency,
                journal=journal,
                report=report,
                out=sys.stdout,
                err=sys.stderr,
            )
        return EXIT_FAILED if summary.tally.failed else EXIT_OK

    try:
        return asyncio.run(run())
    finally:
        if journal is not None:
            journal.close()
        if report is not None:
            report.close()


# -- fake server and demo --------------------------------------------------------------------


def _fake_box(args: argparse.Namespace) -> FakeBox:
    from .testing import FakeBox  # noqa: PLC0415 - only these commands need the fake

    def known(path: str | None) -> list[str] | None:
        return None if path is None else list(_lines(_open_input(path, "--known-*")))

    return FakeBox(
        users=known(args.known_users),
        logins=known(args.known_logins),
        groups=known(args.known_groups),
        rate_limit=args.rate_limit,
        latency=args.latency,
        jitter=args.jitter,
        error_rate=args.error_rate,
        stall_rate=args.stall_rate,
        drop_rate=args.drop_rate,
        max_batch=args.max_batch,
        token_lifetime=args.token_lifetime,
        forbidden=args.forbidden,
        stall_seconds=args.stall_seconds,
        burst=args.burst,
        record_requests=False,  # a standalone server may see millions of ids: keep counts only
        seed=args.seed,
    )


def _cmd_fake_server(args: argparse.Namespace) -> int:
    fake = _fake_box(args)

    async def serve() -> None:
        async with fake.serve(port=args.port) as base_url:
            print(f"FakeBox listening on {base_url}", flush=True)  # noqa: T201 - the command's output
            print(  # noqa: T201
                f"  BOX_DEVELOPER_TOKEN={fake.developer_token}  or  BOX_CLIENT_ID={fake.client_id} "
                f"BOX_CLIENT_SECRET={fake.client_secret} BOX_ENTERPRISE_ID=1",
                flush=True,
            )
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
    return EXIT_OK


def _demo_inputs(seed: int) -> Inputs:
    rng = random.Random(seed)
    user_ids = [str(rng.randrange(10**9, 10**10)) for _ in range(5000)]
    logins = [f"employee{i}@example.com" for i in range(1000)]
    groups = [str(rng.randrange(10**6, 10**7)) for _ in range(50)]
    user_ids += [*user_ids[:20], "not-an-id", "12x"]  # duplicates and bad input, as in real lists
    logins.append("no-at-sign")
    total = len(user_ids) + len(logins) + len(groups)
    return Inputs({"user_ids": user_ids, "user_logins": logins, "group_ids": groups}, total)


def _cmd_demo(args: argparse.Namespace) -> int:
    from .testing import FakeBox  # noqa: PLC0415 - only the demo needs the fake

    # Box's real behaviour, scaled: it silently allows fewer calls than the client's default
    # 1,000 a minute, answers in 150 ms +- 50 ms, and fails a few requests in every way it can.
    fake = FakeBox(
        rate_limit=700,
        latency=0.15,
        jitter=0.05,
        error_rate=0.04,
        stall_rate=0.02,
        drop_rate=0.02,
        stall_seconds=10,
        seed=args.seed,
    )
    out = sys.stdout

    async def run() -> int:
        async with fake.serve() as base_url:
            out.write(
                f"box-sessions {__version__} demo: FakeBox on {base_url} allows 700 requests a minute, "
                "answers in 150 +- 50 ms, fails 4% with 5xx, stalls 2% and drops 2% of connections.\n"
                "Terminating 5,000 user ids, 1,000 logins and 50 groups (plus some duplicates and bad "
                "input) through the real client, CCG auth and the bulk path.\n"
            )
            auth = CCGAuth(client_id=fake.client_id, client_secret=fake.client_secret, enterprise_id="1")
            async with BoxClient(auth, base_url=base_url, timeout=2.0) as client:
                summary, _ = await run_job(
                    client,
                    _demo_inputs(args.seed),
                    batch_size=DEFAULT_BATCH_SIZE,
                    max_concurrency=DEFAULT_MAX_CONCURRENCY,
                    journal=None,
                    report=None,
                    out=out,
                    err=sys.stderr,
                )
        counts = fake.status_counts
        five_xx = sum(n for status, n in counts.items() if status >= 500)
        out.write(
            f"Absorbed on the way: {counts[429]:,} answers 429, {five_xx:,} answers 5xx, "
            f"{fake.faults['drop']:,} dropped connections, {fake.faults['stall']:,} stalled answers "
            "(overtaken by a second copy, or retried after the 2 s timeout); "
            f"FakeBox recorded {fake.terminated_count:,} ids terminated, each once: "
            f"{_each_once(fake.terminated)}.\n"
        )
        invalid_only = summary.tally.failed == summary.tally.failure_kinds["invalid input"]
        return EXIT_OK if invalid_only else EXIT_FAILED

    return asyncio.run(run())


def _each_once(terminated: Mapping[str, list[str]]) -> str:
    return "yes" if all(len(v) == len(set(v)) for v in terminated.values()) else "NO"


# -- argument parsing ------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


def _share(text: str) -> float:
    value = _non_negative(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"a share is between 0 and 1, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="box-sessions",
        description="Terminate Box users' and groups' sessions in bulk, within Box's rate limits.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    term = commands.add_parser(
        "terminate",
        help="terminate the sessions of the given users and groups",
        description=(
            "Terminate sessions in bulk. Credentials come from the environment: BOX_DEVELOPER_TOKEN, or "
            "BOX_CLIENT_ID + BOX_CLIENT_SECRET + BOX_ENTERPRISE_ID (or BOX_USER_ID). Input files hold one "
            "value per line ('-' for stdin); blank lines and # comments are ignored. Exit status: 0 all "
            "terminated, 1 some failed, 2 usage or credential error, 130 interrupted."
        ),
    )
    for field, noun in (("user-ids", "user ids"), ("user-logins", "user logins"), ("group-ids", "group ids")):
        term.add_argument(f"--{field}", metavar="FILE", action="append", default=[], help=f"file of {noun}")
    term.add_argument("--user-id", action="append", default=[], metavar="ID", help="a user id (repeatable)")
    term.add_argument("--user-login", action="append", default=[], metavar="LOGIN", help="a user login (repeatable)")
    term.add_argument("--group-id", action="append", default=[], metavar="ID", help="a group id (repeatable)")
    term.add_argument("--batch-size", type=_positive_int, default=DEFAULT_BATCH_SIZE, help="ids per request (100)")
    term.add_argument(
        "--max-concurrency", type=_positive_int, default=DEFAULT_MAX_CONCURRENCY, help="batches in flight (16)"
    )
    term.add_argument("--rate", type=_non_negative, metavar="PER_MINUTE", help="requests a minute (1000; 0: no pacing)")
    term.add_argument("--base-url", default=DEFAULT_BASE_URL, help=f"API host ({DEFAULT_BASE_URL})")
    term.add_argument("--dry-run", action="store_true", help="print the batches that would be sent; send nothing")
    term.add_argument("--report", metavar="FILE", help="write one JSON line per input value as batches complete")
    term.add_argument("--journal", metavar="FILE", help="SQLite journal: a rerun skips what is done")
    term.set_defaults(func=_cmd_terminate)

    for name, help_text in (
        ("fake-server", "run FakeBox on 127.0.0.1 for integration tests"),
        ("demo", "terminate a few thousand generated ids against an embedded FakeBox"),
    ):
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--seed", type=int, default=7, help="seed of the fake's random faults (7)")
        if name == "demo":
            sub.set_defaults(func=_cmd_demo)
            continue
        sub.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
        sub.add_argument("--rate-limit", type=_non_negative, metavar="PER_MINUTE", help="allowed requests a minute")
        sub.add_argument("--latency", type=_non_negative, default=0.0, help="seconds before each answer")
        sub.add_argument("--jitter", type=_non_negative, default=0.0, help="+- seconds around the latency")
        sub.add_argument("--error-rate", type=_share, default=0.0, help="share of answers 500/502/503")
        sub.add_argument("--stall-rate", type=_share, default=0.0, help="share of answers that stall")
        sub.add_argument("--stall-seconds", type=_non_negative, default=60.0, help="how long a stall lasts (60)")
        sub.add_argument("--burst", type=float, help="rate-limit bucket size (default: one second's worth)")
        sub.add_argument("--drop-rate", type=_share, default=0.0, help="share of dropped connections")
        sub.add_argument("--max-batch", type=_positive_int, help="most ids one request may carry")
        sub.add_argument("--token-lifetime", type=_non_negative, default=3600.0, help="seconds a CCG token lives")
        sub.add_argument("--forbidden", action="store_true", help="answer every call 403")
        for kind in ("users", "logins", "groups"):
            sub.add_argument(f"--known-{kind}", metavar="FILE", help=f"only these {kind} exist (others: 404)")
        sub.set_defaults(func=_cmd_fake_server)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        status: int = args.func(args)
    except UsageError as exc:
        sys.stderr.write(f"box-sessions: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write(
            "box-sessions: interrupted; batches that completed are recorded. Run the same command with "
            "the same --journal to resume.\n"
        )
        return EXIT_INTERRUPTED
    return status


if __name__ == "__main__":  # pragma: no cover - `python -m box_sessions` is the supported way
    sys.exit(main())
