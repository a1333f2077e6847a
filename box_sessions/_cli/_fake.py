"""The ``fake-server`` and ``demo`` commands: FakeBox on 127.0.0.1, alone or under a demonstration job.

The only module of the command line that imports ``box_sessions.testing``, and only when one of
these commands runs: ``terminate`` never loads the fake.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .._auth import CCGAuth
from .._client import BoxClient
from .._termination import DEFAULT_BATCH_SIZE, DEFAULT_MAX_CONCURRENCY
from .._termination._report import counted
from .._version import __version__
from ._arg_types import non_negative, port, positive, positive_int, share
from ._exit import EXIT_FAILED, EXIT_OK, UsageError
from ._inputs import Inputs, read_value_file
from ._signals import until_signal
from ._terminate import print_summary, run_job

if TYPE_CHECKING:
    from ..testing import FakeBox


def _fake_box(args: argparse.Namespace) -> FakeBox:
    from ..testing import FakeBox  # noqa: PLC0415 - only these commands need the fake

    def known(path: str | None) -> list[str] | None:
        return None if path is None else read_value_file(path, "--known-*")

    try:
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
    except (TypeError, ValueError) as exc:  # what the options' own checks let through (a burst below 1)
        raise UsageError(f"fake-server: {exc}") from None


def _control_endpoints(fake: type[FakeBox], base_url: str = "") -> str:
    return "\n".join(f"  {e.method} {base_url}{e.path}  {e.description}" for e in fake.control_endpoints)


class _HelpWithControlEndpoints(argparse.Action):
    """``fake-server --help``, with FakeBox's control endpoints: loaded only when help is asked for."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help="show this help and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        from ..testing import FakeBox  # noqa: PLC0415 - only this command needs the fake

        parser.epilog = f"control endpoints, besides Box's:\n{_control_endpoints(FakeBox)}"
        parser.print_help()
        parser.exit()


def add_fake_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``fake-server`` and ``demo`` commands and their options."""
    about = "run FakeBox on 127.0.0.1 for integration tests"
    server = commands.add_parser(
        "fake-server",
        help=about,
        description=about,
        add_help=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    server.add_argument("-h", "--help", action=_HelpWithControlEndpoints)
    server.add_argument("--seed", type=int, default=7, help="seed of the fake's random faults (7)")
    server.add_argument("--port", type=port, default=0, help="port on 127.0.0.1 (default: a free one)")
    server.add_argument("--rate-limit", type=positive, metavar="PER_MINUTE", help="allowed requests a minute")
    server.add_argument("--latency", type=non_negative, default=0.0, help="seconds before each answer")
    server.add_argument("--jitter", type=non_negative, default=0.0, help="+- seconds around the latency")
    server.add_argument("--error-rate", type=share, default=0.0, help="share of answers 500/502/503")
    server.add_argument("--stall-rate", type=share, default=0.0, help="share of answers that stall")
    server.add_argument("--stall-seconds", type=non_negative, default=60.0, help="how long a stall lasts (60)")
    server.add_argument("--burst", type=positive, help="rate-limit bucket size, at least 1 (default: one second's)")
    server.add_argument("--drop-rate", type=share, default=0.0, help="share of dropped connections")
    server.add_argument("--max-batch", type=positive_int, help="most ids one request may carry")
    server.add_argument("--token-lifetime", type=positive, default=3600.0, help="seconds a CCG token lives")
    server.add_argument("--forbidden", action="store_true", help="answer every call 403")
    for kind in ("users", "logins", "groups"):
        server.add_argument(f"--known-{kind}", metavar="FILE", help=f"only these {kind} exist (others: 404)")
    server.set_defaults(func=cmd_fake_server)

    about = "terminate a few thousand generated ids against an embedded FakeBox"
    demo = commands.add_parser("demo", help=about, description=about)
    demo.add_argument("--seed", type=int, default=7, help="seed of the fake's random faults (7)")
    demo.set_defaults(func=cmd_demo)


def cmd_fake_server(args: argparse.Namespace) -> int:
    """The ``fake-server`` command: serve FakeBox on 127.0.0.1 until interrupted; exit 0.

    Raises:
        UsageError: an option FakeBox refuses, or a port it cannot listen on (one in use).
    """
    fake = _fake_box(args)

    async def serve() -> None:
        async with contextlib.AsyncExitStack() as stack:
            try:
                base_url = await stack.enter_async_context(fake.serve(port=args.port))
            except OSError as exc:
                raise UsageError(
                    f"fake-server: cannot listen on 127.0.0.1:{args.port}: {exc.strerror or exc}"
                ) from None
            out = sys.stdout
            out.write(f"FakeBox listening on {base_url}\n")
            out.write(
                f"  BOX_DEVELOPER_TOKEN={fake.developer_token}  or  BOX_CLIENT_ID={fake.client_id} "
                f"BOX_CLIENT_SECRET={fake.client_secret} BOX_ENTERPRISE_ID=1\n"
            )
            out.write(f"Control endpoints, besides Box's:\n{_control_endpoints(type(fake), base_url)}\n")
            out.flush()
            await asyncio.Event().wait()

    # Until SIGINT or SIGTERM, handled by the loop from before the banner on: asyncio.run leaves
    # a SIGINT ignored at start ignored (a shell's `&` job), and SIGTERM would end it uncleanly.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(until_signal(serve()))
    return EXIT_OK


def _demo_inputs(seed: int) -> Inputs:
    rng = random.Random(seed)
    user_ids = [str(rng.randrange(10**9, 10**10)) for _ in range(5000)]
    logins = [f"employee{i}@example.com" for i in range(1000)]
    groups = [str(rng.randrange(10**6, 10**7)) for _ in range(50)]
    user_ids += [*user_ids[:20], "not-an-id", "12x"]  # duplicates and bad input, as in real lists
    logins.append("no-at-sign")
    total = len(user_ids) + len(logins) + len(groups)
    return Inputs({"user_ids": user_ids, "user_logins": logins, "group_ids": groups}, total, digest=None)


def cmd_demo(args: argparse.Namespace) -> int:
    """The ``demo`` command: exit 0 when only the deliberately invalid inputs failed."""
    from ..testing import FakeBox  # noqa: PLC0415 - only the demo needs the fake

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
                summary = await run_job(
                    client,
                    _demo_inputs(args.seed),
                    batch_size=DEFAULT_BATCH_SIZE,
                    max_concurrency=DEFAULT_MAX_CONCURRENCY,
                    journal=None,
                    report=None,
                    err=sys.stderr,
                )
            print_summary(summary, out, sys.stderr)
        out.write(absorbed(fake) + "\n")
        invalid_only = summary.tally.failed == summary.tally.failure_kinds["invalid input"]
        return EXIT_OK if invalid_only else EXIT_FAILED

    return asyncio.run(run())


def absorbed(fake: FakeBox) -> str:
    """The demo's closing line: the faults the job absorbed, and whether FakeBox terminated each id once."""
    counts = fake.status_counts
    five_xx = sum(n for status, n in counts.items() if status >= 500)
    return (
        f"Absorbed on the way: {counted(counts[429], 'answer')} 429, {counted(five_xx, 'answer')} 5xx, "
        f"{counted(fake.faults['drop'], 'dropped connection')}, {counted(fake.faults['stall'], 'stalled answer')} "
        "(overtaken by a second copy, or retried after the 2 s timeout); "
        f"FakeBox recorded {counted(fake.terminated_count, 'id')} terminated, each once: "
        f"{_each_once(fake.terminated)}."
    )


def _each_once(terminated: Mapping[str, list[str]]) -> str:
    return "yes" if all(len(v) == len(set(v)) for v in terminated.values()) else "NO"
