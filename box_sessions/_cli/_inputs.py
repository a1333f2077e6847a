"""The command's input values: flags and files (``-`` for stdin) read as lazy iterators of strings."""

from __future__ import annotations

import argparse
import contextlib
import itertools
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

import attrs

from ._exit import UsageError


def read_lines(stream: TextIO) -> Iterator[str]:
    """Values of a file: one per line; blank lines and ``#`` comments skipped."""
    with contextlib.closing(stream) if stream is not sys.stdin else contextlib.nullcontext(stream):
        for line in stream:
            value = line.split("#", 1)[0].strip()
            if value:
                yield value


def open_input(path: str, option: str) -> TextIO:
    """The file named by ``option``, or stdin for ``-``; a file that cannot be read is a usage error."""
    if path == "-":
        return sys.stdin
    try:
        return Path(path).open(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{option}: cannot read {path!r}: {exc.strerror or exc}") from None


def _held(files: contextlib.ExitStack, stream: TextIO) -> TextIO:
    """``stream``, to be closed with ``files`` unless it is stdin, which is not ours to close."""
    return stream if stream is sys.stdin else files.enter_context(stream)


@attrs.define
class Inputs:
    """The three inputs of a job, each a lazy iterator of strings."""

    sources: dict[str, Iterable[str]]
    total: int | None  # known when no input is stdin
    _files: contextlib.ExitStack = attrs.field(factory=contextlib.ExitStack, repr=False)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Inputs:
        """The inputs the ``terminate`` flags name; files are opened now and read as the job runs.

        Raises:
            UsageError: no input, stdin named twice, or a file that cannot be read; every file
                opened before the error is closed again.
        """
        spec = {
            "user_ids": (args.user_id, args.user_ids, "--user-ids"),
            "user_logins": (args.user_login, args.user_logins, "--user-logins"),
            "group_ids": (args.group_id, args.group_ids, "--group-ids"),
        }
        if sum(path == "-" for _, paths, _ in spec.values() for path in paths) > 1:
            raise UsageError("only one input can be read from stdin ('-')")
        sources: dict[str, Iterable[str]] = {}
        total: int | None = 0
        with contextlib.ExitStack() as files:
            for field, (values, paths, option) in spec.items():
                streams = [_held(files, open_input(path, option)) for path in paths]
                if not values and not streams:
                    continue
                sources[field] = itertools.chain(values, *(read_lines(s) for s in streams))
                if total is not None:
                    if any(s is sys.stdin for s in streams):
                        total = None
                    else:
                        total += len(values) + sum(sum(1 for _ in read_lines(open_input(p, option))) for p in paths)
            if not sources:
                raise UsageError("nothing to terminate: give --user-ids, --user-logins, --group-ids or --user-id ...")
            return cls(sources, total, files.pop_all())

    def close(self) -> None:
        """Close the input files, read to the end or not (a job that stops early leaves some unread)."""
        self._files.close()
