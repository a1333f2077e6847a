"""Files for their owner only: the report and the journal hold the logins of the people being locked out.

A file the command creates is ``0600`` whatever the umask. An existing regular file keeps its mode,
narrowed to ``0600`` if it is wider (a report an older version wrote ``0644``, a copy made readable),
with one line on stderr saying so, before anything is written to it. Devices, pipes and terminals
(``/dev/null``, a FIFO) are left as they are: their modes are not the job's to change.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TextIO

__all__ = ["PRIVATE", "create_private", "narrow", "open_private"]

PRIVATE = 0o600


def narrow(path: str, *, option: str, err: TextIO) -> None:
    """Take from ``path`` every permission beyond ``0600``, saying so on ``err``; nothing if it does not exist.

    Raises:
        OSError: the mode cannot be changed (a file of another user).
    """
    try:
        status = Path(path).stat()
    except FileNotFoundError:
        return
    mode = stat.S_IMODE(status.st_mode)
    if not stat.S_ISREG(status.st_mode) or not mode & ~PRIVATE:
        return
    Path(path).chmod(mode & PRIVATE)
    err.write(
        f"box-sessions: {option}: narrowed {path!r} from mode {mode:04o} to {mode & PRIVATE:04o}: "
        "it holds the logins of the people being locked out\n"
    )
    err.flush()


def create_private(path: str) -> None:
    """Create ``path`` empty and ``0600`` if it does not exist; leave an existing file as it is.

    Raises:
        OSError: the file cannot be created (a missing folder).
    """
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE))
    except FileExistsError:
        return
    Path(path).chmod(PRIVATE)  # exactly 0600: a umask such as 0o277 takes more than group and others' bits


def open_private(path: str, flags: int, *, option: str, err: TextIO) -> int:
    """Open ``path`` with ``flags``: created ``0600`` if it does not exist, else narrowed first (see `narrow`).

    Returns:
        The file descriptor.

    Raises:
        OSError: the file cannot be created, opened or narrowed.
    """
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, PRIVATE)
    except FileExistsError:
        narrow(path, option=option, err=err)
        return os.open(path, flags)
    try:
        Path(path).chmod(PRIVATE)  # exactly 0600: a umask such as 0o277 takes more than group and others' bits
    except OSError:
        os.close(fd)
        raise
    return fd
