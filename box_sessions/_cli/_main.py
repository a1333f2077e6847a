"""The command's entry point: parse the arguments, run the command, map its errors to exit statuses.

Exit codes: 0 every input terminated, 1 some failed, 2 usage or credential error (Box refusing the
credentials included), 130 interrupted by Ctrl-C, 143 by SIGTERM.
Secrets come from the environment only, never from flags.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .._client import DEFAULT_BASE_URL
from .._termination import DEFAULT_BATCH_SIZE, DEFAULT_MAX_CONCURRENCY
from .._version import __version__
from ._arg_types import non_negative, positive_int
from ._exit import EXIT_INTERRUPTED, EXIT_USAGE, UsageError
from ._fake import add_fake_commands
from ._signals import Interrupted
from ._terminate import cmd_terminate


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``box-sessions`` and its three commands; each sets ``func`` to the function that runs it."""
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
            "BOX_CLIENT_ID + BOX_CLIENT_SECRET + BOX_ENTERPRISE_ID (or BOX_USER_ID). Input files are UTF-8 and "
            "hold one value per line ('-' for stdin); blank lines and # comments are ignored. Exit status: 0 all "
            "terminated, 1 some failed, 2 usage or credential error, 130 Ctrl-C, 143 SIGTERM."
        ),
    )
    for field, noun in (("user-ids", "user ids"), ("user-logins", "user logins"), ("group-ids", "group ids")):
        term.add_argument(f"--{field}", metavar="FILE", action="append", default=[], help=f"file of {noun}")
    term.add_argument("--user-id", action="append", default=[], metavar="ID", help="a user id (repeatable)")
    term.add_argument("--user-login", action="append", default=[], metavar="LOGIN", help="a user login (repeatable)")
    term.add_argument("--group-id", action="append", default=[], metavar="ID", help="a group id (repeatable)")
    term.add_argument(
        "--bulk-file",
        "--bulk-file-path",
        dest="bulk_file",
        metavar="FILE",
        action="append",
        default=[],
        help="a Box CLI bulk file: CSV with a header row, or JSON (.json); columns user_ids, user_logins, group_ids",
    )
    term.add_argument(
        "--column",
        metavar="FIELD=HEADER",
        action="append",
        default=[],
        help="read FIELD (user_ids, user_logins, group_ids) from the bulk files' column HEADER (repeatable)",
    )
    term.add_argument("--allow-empty", action="store_true", help="inputs without any value are not an error")
    term.add_argument("--batch-size", type=positive_int, default=DEFAULT_BATCH_SIZE, help="ids per request (100)")
    term.add_argument(
        "--max-concurrency", type=positive_int, default=DEFAULT_MAX_CONCURRENCY, help="batches in flight (16)"
    )
    term.add_argument("--rate", type=non_negative, metavar="PER_MINUTE", help="requests a minute (1000; 0: no pacing)")
    term.add_argument("--base-url", metavar="URL", help=f"API host (default: BOX_BASE_URL, else {DEFAULT_BASE_URL})")
    term.add_argument(
        "--redis",
        metavar="URL",
        help="Redis shared by every job of this Box app: one token, one rate limit, one 429 cool-down "
        "(BOX_REDIS_URL; a URL with a password only there)",
    )
    term.add_argument("--dry-run", action="store_true", help="print the batches that would be sent; send nothing")
    term.add_argument(
        "--report", metavar="FILE", help="write one JSON line per input value as batches complete ('-': stdout)"
    )
    term.add_argument(
        "--journal", metavar="FILE", help="SQLite journal of this job: running the same job again resumes it"
    )
    term.add_argument("--json", action="store_true", help="end with one JSON object on stdout instead of the summary")
    term.set_defaults(func=cmd_terminate)

    add_fake_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        status: int = args.func(args)
    except UsageError as exc:
        sys.stderr.write(f"box-sessions: {exc}\n")
        return EXIT_USAGE
    # Outside a job (reading the inputs, a dry run): there is no summary to add, and no journal to speak of.
    except KeyboardInterrupt:
        sys.stderr.write("box-sessions: interrupted by SIGINT\n")
        return EXIT_INTERRUPTED
    except Interrupted as exc:
        sys.stderr.write(f"box-sessions: interrupted by {exc}\n")
        return 128 + exc.signum
    return status
