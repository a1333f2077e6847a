"""The one error a share raises, whatever its backend."""

from __future__ import annotations

from .._errors import BoxError

__all__ = ["SharedStateError"]


class SharedStateError(BoxError):
    """The shared state (e.g. Redis) could not be reached, refused a command, or failed mid-way.

    A share raises it for any failure of its backend, with a message that names what failed and
    never a token or a password. The core never fails a call because of it: it falls back to
    this process's own state (see `box_sessions.Shared`).
    """
