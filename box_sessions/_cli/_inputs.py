"""The job's inputs, read once before anything is sent: checked, counted, hashed and kept in spools.

Every value of the flags, the value files (``--user-ids FILE``...) and the bulk files is read
before the first request: a file that cannot be read, is not UTF-8 or is not valid CSV or JSON is a
usage error while nothing has been sent, and a job whose inputs hold no value at all is one too
(unless ``--allow-empty``): a wrong export must not look like success. The values go to one
temporary file per field (one JSON value a line), so the job sends exactly what was checked and
hashed, a named pipe works as well as a file, and no list of ids is held in memory. The hash of
the values, per field and in order, is the inputs' part of the job's identity (see ``_journal``).

Stdin (``-``) is the exception: it is streamed as the job runs, so that a producer can feed the
job as it finds ids, and a line of it that is not UTF-8 is reported as invalid input. With a
journal it is spooled like a file, as the job's identity needs all of its values first.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import json
import sys
import tempfile
from collections.abc import Iterable, Iterator
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import IO, BinaryIO

import attrs

from .._termination import FIELDS, Field
from ._bulk_file import bulk_values, parse_columns
from ._exit import UsageError
from ._text import NotUTF8, decoded_lines, values_of

__all__ = ["Inputs", "open_binary", "read_value_file"]

_OPTIONS: dict[Field, tuple[str, str, str]] = {
    "user_ids": ("user_id", "user_ids", "--user-ids"),
    "user_logins": ("user_login", "user_logins", "--user-logins"),
    "group_ids": ("group_id", "group_ids", "--group-ids"),
}


def open_binary(path: str, option: str) -> BinaryIO:
    """The file named by ``option``, opened for reading bytes; one that cannot be read is a usage error."""
    try:
        return Path(path).open("rb")
    except OSError as exc:
        raise UsageError(f"{option}: cannot read {path!r}: {exc.strerror or exc}") from None


def read_value_file(path: str, option: str) -> list[str]:
    """The values of one small value file, read whole; a file that is unreadable or not UTF-8 is a usage error."""
    with open_binary(path, option) as stream:
        return list(values_of(_file_lines(stream, path, option)))


def _encoded(value: object) -> bytes:
    """One spool line: the value as JSON. A text value, the usual case, skips `json.dumps`'s own
    overhead for the C function it ends in: the same bytes, so the same hash, in a fifth of the time."""
    if isinstance(value, str):
        return encode_basestring_ascii(value).encode() + b"\n"
    data = {"not_utf8": [value.source, value.line, value.raw.hex()]} if isinstance(value, NotUTF8) else value
    return json.dumps(data).encode() + b"\n"


def _decoded(line: bytes) -> object:
    """The value of a spool line. ASCII text without escapes, the usual case, is read without the JSON
    parser (a non-ASCII character is always escaped, as `_encoded` writes ASCII only)."""
    if line.startswith(b'"') and line.endswith(b'"\n') and b"\\" not in line:
        return line[1:-2].decode("ascii")
    data = json.loads(line)
    if isinstance(data, dict):
        source, number, raw = data["not_utf8"]
        return NotUTF8(source, number, bytes.fromhex(raw))
    return data


class _Spool:
    """One field's values in a temporary file, one JSON value a line, hashed as they are written."""

    def __init__(self, field: Field, files: contextlib.ExitStack) -> None:
        self._file: IO[bytes] = files.enter_context(tempfile.TemporaryFile())  # noqa: SIM115 - the stack closes it
        self.hash = hashlib.sha256(f"{field}\n".encode())
        self.count = 0

    def add(self, value: object) -> None:
        line = _encoded(value)
        self.hash.update(line)
        self.count += 1
        try:
            self._file.write(line)
        except OSError as exc:
            raise UsageError(f"cannot keep the inputs in a temporary file: {exc.strerror or exc}") from None

    def values(self) -> Iterator[object]:
        self._file.flush()
        self._file.seek(0)
        for line in self._file:
            yield _decoded(line)


def _file_lines(stream: BinaryIO, path: str, option: str) -> Iterator[str]:
    """The decoded lines of a named file; a line that is not UTF-8, or a read error, is a usage error."""
    try:
        yield from decoded_lines(stream, path, strict=True)
    except UsageError as exc:
        raise UsageError(f"{option}: {exc}") from None
    except OSError as exc:
        raise UsageError(f"{option}: cannot read {path!r}: {exc.strerror or exc}") from None


@attrs.define
class Inputs:
    """The three inputs of a job, ready to be read by it.

    Attributes:
        sources: Each field's values: its spool, then stdin's values if stdin streams into it.
        total: How many values the inputs hold; ``None`` while stdin streams.
        digest: The SHA-256 of every value, per field and in order; ``None`` while stdin streams.
    """

    sources: dict[Field, Iterable[object]]
    total: int | None
    digest: str | None
    _files: contextlib.ExitStack = attrs.field(factory=contextlib.ExitStack, repr=False)

    @classmethod
    def from_args(cls, args: argparse.Namespace, *, spool_stdin: bool) -> Inputs:
        """Read the inputs the ``terminate`` options name, before anything is sent.

        Args:
            args: The parsed options.
            spool_stdin: Read stdin whole now (a journal needs its values' hash), instead of
                streaming it as the job runs.

        Raises:
            UsageError: no input option, stdin named twice, a file that cannot be read, is not
                UTF-8 or is not a valid bulk file, or inputs without a value and no ``--allow-empty``.
                Every file opened before the error is closed again.
        """
        paths = [p for field in FIELDS for p in getattr(args, _OPTIONS[field][1])]
        if paths.count("-") > 1:
            raise UsageError("only one input can be read from stdin ('-')")
        if "-" in args.bulk_file:
            raise UsageError("--bulk-file: name a file; a bulk file cannot be read from stdin ('-')")
        if args.column and not args.bulk_file:
            raise UsageError("--column names a column of a --bulk-file: give the file too")
        if not (paths or args.bulk_file or any(getattr(args, _OPTIONS[f][0]) for f in FIELDS)):
            raise UsageError(
                "nothing to terminate: give --user-ids, --user-logins, --group-ids, --bulk-file or --user-id ..."
            )
        with contextlib.ExitStack() as files:
            sources, total, digest = _spooled(args, files, spool_stdin=spool_stdin)
            if total == 0 and not args.allow_empty:
                raise UsageError(
                    "the inputs hold no value to terminate (only blank lines, comments or a header?); check "
                    "the export, or pass --allow-empty to let an empty job succeed"
                )
            return cls(sources, total, digest, files.pop_all())

    def close(self) -> None:
        """Close the spools (their files are deleted) and any input file still open."""
        self._files.close()


def _spooled(
    args: argparse.Namespace, files: contextlib.ExitStack, *, spool_stdin: bool
) -> tuple[dict[Field, Iterable[object]], int | None, str | None]:
    """Each field's source, the number of values and their digest (both ``None`` while stdin streams)."""
    spools = {field: _Spool(field, files) for field in FIELDS}
    streamed: dict[Field, Iterable[object]] = {}
    for field in FIELDS:
        values_option, files_option, option = _OPTIONS[field]
        for value in getattr(args, values_option):
            spools[field].add(value)
        for path in getattr(args, files_option):
            if path != "-":
                with open_binary(path, option) as stream:  # read whole now, closed before the next one opens
                    for value in values_of(_file_lines(stream, path, option)):
                        spools[field].add(value)
                continue
            stdin = values_of(decoded_lines(sys.stdin.buffer, "stdin", strict=False))
            if spool_stdin:
                for value in stdin:
                    spools[field].add(value)
            else:
                streamed[field] = stdin
    columns = parse_columns(args.column)
    for path in args.bulk_file:
        with open_binary(path, "--bulk-file") as stream:
            for field, value in bulk_values(path, _file_lines(stream, path, "--bulk-file"), columns):
                spools[field].add(value)
    whole = hashlib.sha256(b"box-sessions inputs 1\n")
    for spool in spools.values():
        whole.update(spool.hash.digest())
    sources: dict[Field, Iterable[object]] = {
        field: itertools.chain(spools[field].values(), streamed.get(field, ())) for field in FIELDS
    }
    if streamed:
        return sources, None, None
    return sources, sum(spool.count for spool in spools.values()), whole.hexdigest()
