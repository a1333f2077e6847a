"""Text as people have it: UTF-8 with or without a byte-order mark, read line by line, and value files.

Spreadsheets write a byte-order mark at the start of a UTF-8 file; it is not part of the first
value. A named file in another encoding is a usage error naming the file and the line, found
before anything is sent. A line of stdin that is not UTF-8 cannot stop a job that is already
sending: it becomes a `NotUTF8` value, which the job reports as invalid input and never sends.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Iterator
from typing import Literal, overload

from ._exit import UsageError

__all__ = ["NotUTF8", "decoded_lines", "values_of"]

#: How a zip file starts; an .xlsx workbook is one, and people give them where a CSV is asked for.
_ZIP_MAGIC = b"PK\x03\x04"


class NotUTF8:
    """A line that is not UTF-8, carried as a value so that the job reports it as invalid input.

    Args:
        source: Where the line came from (``"stdin"``).
        line: Its line number, from 1.
        raw: Its bytes, without the line break.
    """

    __slots__ = ("line", "raw", "source")

    def __init__(self, source: str, line: int, raw: bytes) -> None:
        self.source = source
        self.line = line
        self.raw = raw

    def __repr__(self) -> str:
        return f"<line {self.line} of {self.source} is not UTF-8: {self.raw[:64]!r}>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NotUTF8):
            return NotImplemented
        return (self.source, self.line, self.raw) == (other.source, other.line, other.raw)

    def __hash__(self) -> int:
        return hash((self.source, self.line, self.raw))


@overload
def decoded_lines(raw_lines: Iterable[bytes], name: str, *, strict: Literal[True]) -> Iterator[str]: ...
@overload
def decoded_lines(raw_lines: Iterable[bytes], name: str, *, strict: bool) -> Iterator[str | NotUTF8]: ...
def decoded_lines(raw_lines: Iterable[bytes], name: str, *, strict: bool) -> Iterator[str | NotUTF8]:
    """The lines of ``raw_lines`` decoded as UTF-8, line breaks kept, a leading byte-order mark dropped.

    Args:
        raw_lines: The file's lines as bytes (a file opened in binary mode).
        name: The file's name, for messages.
        strict: A line that is not UTF-8 is a `UsageError`; otherwise it is yielded as `NotUTF8`.

    Raises:
        UsageError: ``strict`` and a line is not UTF-8; the message names the file and the line.
    """
    for number, raw in enumerate(raw_lines, 1):
        line = raw[len(codecs.BOM_UTF8) :] if number == 1 and raw.startswith(codecs.BOM_UTF8) else raw
        try:
            yield line.decode("utf-8")
        except UnicodeDecodeError as exc:
            if strict:
                if number == 1 and line.startswith(_ZIP_MAGIC):
                    raise UsageError(
                        f"{name} is a zip file (an Excel workbook?), not text; save it as CSV UTF-8"
                    ) from None
                raise UsageError(
                    f"{name}: line {number} is not UTF-8 (at byte {exc.start + 1} of the line); save the file as UTF-8"
                ) from None
            yield NotUTF8(name, number, line.rstrip(b"\r\n"))


@overload
def values_of(lines: Iterable[str]) -> Iterator[str]: ...
@overload
def values_of(lines: Iterable[str | NotUTF8]) -> Iterator[str | NotUTF8]: ...
def values_of(lines: Iterable[str | NotUTF8]) -> Iterator[str | NotUTF8]:
    """The values of a value file: one a line, white space trimmed; blank lines and ``#`` comments skipped."""
    for line in lines:
        if isinstance(line, NotUTF8):
            yield line
            continue
        value = line.split("#", 1)[0].strip()
        if value:
            yield value
