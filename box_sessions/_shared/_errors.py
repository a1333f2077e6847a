"""The one error a share raises, whatever its backend."""

from __future__ import annotations

from .._errors import BoxError

__all__ = ["SharedStateError"]


class SharedStateError(BoxError):
    """The shared state (e.g. Redis) could not be reached, refused a command, or failed mid-way.

    A share raises it for any failure of its backend, with a message that names what failed (and
    what to change) and never a token or a password. The core never fails a call because of it,
    except an OAuth 2.0 refresh: it falls back to this process's own state (see `box_sessions.Shared`).

    Attributes:
        refusal: What the store refused, in its own word, when it answered but refused (Redis:
            ``"READONLY"``, ``"OOM"``, ``"NOPERM <command>"``); ``None`` when it could not be
            reached or failed otherwise. A client says each refusal once.
    """

    def __init__(self, message: str, *, refusal: str | None = None) -> None:
        super().__init__(message)
        self.refusal = refusal
