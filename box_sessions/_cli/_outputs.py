"""What the job writes (the report, the journal) never lands on what it reads or records.

``--user-ids three.txt --report three.txt`` would replace the list of people to lock out with the
report before the first of them is read; ``--journal X --report X`` would write JSON lines over the
journal. Both are usage errors found before any file is opened. Files are compared as files, not as
strings: ``./three.txt``, a symbolic link or a hard link to it are the same file.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

from ._exit import UsageError

__all__ = ["check_outputs"]

#: The options that name files the job reads, with the ``argparse`` attribute that holds them.
_INPUT_OPTIONS = {"--user-ids": "user_ids", "--user-logins": "user_logins", "--group-ids": "group_ids"}


def _same_file(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` are one file: the same inode, or, while one does not exist yet, the same path."""
    try:
        return Path(a).samefile(b)
    except OSError:  # not both there: compare where they would be
        return Path(a).resolve() == Path(b).resolve()


def _inputs(args: argparse.Namespace) -> Iterator[tuple[str, str]]:
    """Each input file with the option that names it; stdin (``-``) is no file."""
    for option, attribute in _INPUT_OPTIONS.items():
        yield from ((option, path) for path in getattr(args, attribute) if path != "-")
    yield from (("--bulk-file", path) for path in args.bulk_file)


def check_outputs(args: argparse.Namespace) -> None:
    """Refuse a ``--report`` that names an input file or the journal, and a ``--journal`` that names an input file.

    Raises:
        UsageError: one sentence naming both options and the file.
    """
    outputs = [("--report", args.report, "report"), ("--journal", args.journal, "journal")]
    for option, output, what in outputs:
        if not output or output == "-":
            continue
        for input_option, path in _inputs(args):
            if _same_file(output, path):
                raise UsageError(
                    f"{option} and {input_option} name the same file ({path!r}): the {what} would overwrite "
                    f"the input; give the {what} another file"
                )
    if args.report and args.report != "-" and args.journal and _same_file(args.report, args.journal):
        raise UsageError(
            f"--report and --journal name the same file ({args.journal!r}): the report would overwrite the "
            "journal; give the report another file"
        )
