"""The report file: one JSON line per input value, written as batches complete (``-``: stdout).

A terminated value's line carries the evidence: Box's ``request_id`` of the request that carried
it and ``accepted_at``, when Box accepted it (ISO 8601, UTC).

It holds the logins of the people being locked out: it is created ``0600`` (see `_private`).
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import sys
from typing import Any, TextIO

from .._termination import BatchResult, utc_text
from ._exit import UsageError
from ._private import open_private

__all__ = ["ReportFile"]


def _probe(file: TextIO) -> None:
    """Write to ``file`` once, where that harms nothing, so that a full disk shows before anything is sent.

    A regular file gets a byte that is taken back at once; a device that is not a terminal
    (``/dev/null``, ``/dev/full``) gets a line break. Pipes and terminals are left alone: what is
    written to them cannot be taken back.
    """
    mode = os.fstat(file.fileno()).st_mode
    if stat.S_ISREG(mode):
        file.write("\n")
        file.flush()
        file.seek(0)
        file.truncate()
    elif stat.S_ISCHR(mode) and not file.isatty():
        file.write("\n")
        file.flush()


class ReportFile:
    """JSON lines, one per input value, written as batches complete.

    Args:
        path: The file to write (replaced if it exists; created ``0600``, or narrowed to it), or
            ``-`` for stdout.
        err: Where to say that an existing file's mode was narrowed.

    Raises:
        UsageError: the file cannot be created, narrowed or written (a missing folder, a full disk).
    """

    def __init__(self, path: str, *, err: TextIO) -> None:
        self.path = path
        self.to_stdout = path == "-"
        if self.to_stdout:
            self._file: TextIO = sys.stdout
            return
        try:
            fd = open_private(path, os.O_WRONLY | os.O_TRUNC, option="--report", err=err)
            self._file = open(fd, "w", encoding="utf-8")  # noqa: PTH123, SIM115 - a descriptor; closed in close()
        except OSError as exc:
            raise UsageError(f"--report: cannot write {path!r}: {exc.strerror or exc}") from None
        try:
            _probe(self._file)
        except OSError as exc:
            with contextlib.suppress(OSError):  # what could not be written cannot be flushed either
                self._file.close()
            raise UsageError(f"--report: cannot write {path!r}: {exc.strerror or exc}") from None

    def line(self, data: dict[str, Any]) -> None:
        """Write one line (flushed with the batch it belongs to).

        Raises:
            UsageError: the file cannot be written any more.
        """
        try:
            self._file.write(json.dumps(data) + "\n")
        except OSError as exc:
            raise UsageError(f"--report: cannot write {self.path!r} any more: {exc.strerror or exc}") from None

    def record(self, result: BatchResult) -> None:
        """Write one line per value of a batch's outcome, and flush them.

        Raises:
            UsageError: the file cannot be written any more.
        """
        for acceptance in result.accepted:
            evidence = {"request_id": acceptance.request_id, "accepted_at": utc_text(acceptance.accepted_at)}
            for field, value in acceptance.terminated:
                self.line({"field": field, "value": value, "status": "terminated", "error": None, **evidence})
        for failure in result.failed:
            data = failure.to_dict()
            self.line({"field": data["field"], "value": data["value"], "status": "failed", "error": data["error"]})
        self.flush()

    def flush(self) -> None:
        """Write out what is buffered.

        Raises:
            UsageError: the file cannot be written any more.
        """
        try:
            self._file.flush()
        except OSError as exc:
            raise UsageError(f"--report: cannot write {self.path!r} any more: {exc.strerror or exc}") from None

    def close(self) -> None:
        """Close the file (stdout stays open). A failure to write was raised by `flush`; this is clean-up."""
        if not self.to_stdout:
            with contextlib.suppress(OSError):
                self._file.close()
