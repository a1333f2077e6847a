"""Errors raised by box_sessions.

::

    BoxError
    ├── BoxAPIError                 Box answered with an error status
    │   ├── BadRequestError         400
    │   ├── AuthenticationError     401, and token-endpoint refusals
    │   ├── PermissionDeniedError   403
    │   ├── NotFoundError           404
    │   ├── RateLimitError          429
    │   └── ServerError             5xx
    ├── BoxTimeoutError             the network timed out, after retries, or the deadline passed
    ├── BoxConnectionError          the connection failed, after retries
    └── ClientClosedError           the client was closed before the call could end

`asyncio.CancelledError` is never caught, wrapped or retried by this package.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._http import httpx
from ._json import json_object

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "BoxAPIError",
    "BoxConnectionError",
    "BoxError",
    "BoxTimeoutError",
    "ClientClosedError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ServerError",
    "error_from_response",
    "with_note",
]

# How much of a body that is not Box's JSON (a proxy's HTML page) to quote in a message.
_SNIPPET_CHARS = 200


class BoxError(Exception):
    """The root of every error this package raises."""


class BoxTimeoutError(BoxError):
    """The network timed out after every retry, or the call's total deadline passed."""


class BoxConnectionError(BoxError):
    """A connection to Box could not be made or was dropped, after every retry."""


class ClientClosedError(BoxError):
    """The client was closed (`BoxClient.aclose`) while a call waited or ran: it was not sent, or its answer is lost."""


class BoxAPIError(BoxError):
    """Box answered with an error status.

    Attributes:
        status: The HTTP status code.
        code: Box's error code (``rate_limit_exceeded``, ``not_found``, ...), or the OAuth
            ``error`` of the token endpoint; ``None`` when the body did not carry one.
        message: Box's message, or a description made from the status when the body had none.
        request_id: Box's request id, for Box support: the body's ``request_id``, else the
            ``box-request-id`` header; ``None`` when neither was sent.
        help_url: Box's link to documentation about the error; ``None`` when absent.
        context_info: Box's extra details; an empty dict when absent or null.
        retry_after: Seconds Box asked to wait (``retry-after`` header), or ``None``.
        headers: The response headers.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: str | None = None,
        request_id: str | None = None,
        help_url: str | None = None,
        context_info: Mapping[str, Any] | None = None,
        retry_after: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.help_url = help_url
        self.context_info: dict[str, Any] = dict(context_info or {})
        self.retry_after = retry_after
        self.headers: dict[str, str] = dict(headers or {})
        super().__init__(message)

    def __str__(self) -> str:
        head = f"{self.status} {self.code}" if self.code else str(self.status)
        extras = []
        if self.request_id:
            extras.append(f"request_id={self.request_id}")
        if self.retry_after is not None:
            extras.append(f"retry_after={self.retry_after:g}s")
        tail = f" ({', '.join(extras)})" if extras else ""
        return f"{head}: {self.message}{tail}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, code={self.code!r}, message={self.message!r})"


class BadRequestError(BoxAPIError):
    """Box refused the request as malformed (400), e.g. an id Box does not accept."""


class AuthenticationError(BoxAPIError):
    """Box refused the credentials (401), or the token endpoint refused to issue a token."""


class PermissionDeniedError(BoxAPIError):
    """The token's user may not terminate sessions (403)."""


class NotFoundError(BoxAPIError):
    """A user or group named in the request does not exist (404)."""


class RateLimitError(BoxAPIError):
    """Box rate-limited the request (429) and retrying was not possible or not allowed."""


class ServerError(BoxAPIError):
    """Box failed on its side (5xx) on every attempt."""


_CLASS_BY_STATUS: dict[int, type[BoxAPIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    429: RateLimitError,
}


def _error_class(status: int, *, token_endpoint: bool) -> type[BoxAPIError]:
    if status >= 500:
        return ServerError
    if status == 429:
        return RateLimitError
    if token_endpoint:
        # The token endpoint answers bad credentials with 400 or 401; either way it is
        # an authentication failure to the caller.
        return AuthenticationError
    return _CLASS_BY_STATUS.get(status, BoxAPIError)


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _fallback_message(response: httpx.Response, content: bytes) -> str:
    reason = response.reason_phrase or "error"
    text = content[:_SNIPPET_CHARS].decode("utf-8", errors="replace")
    text = " ".join(text.split())
    if not text:
        return f"HTTP {response.status_code} {reason} with an empty body"
    return f"HTTP {response.status_code} {reason}, body not Box's JSON: {text!r}"


def with_note(error: BoxAPIError, note: str) -> BoxAPIError:
    """Append ``note`` to the error's message (Python 3.10 has no ``add_note``)."""
    error.message = f"{error.message} ({note})"
    error.args = (error.message,)
    return error


def error_from_response(
    response: httpx.Response,
    *,
    retry_after: float | None = None,
    token_endpoint: bool = False,
) -> BoxAPIError:
    """Build the typed error for an error response, whatever its body holds.

    Args:
        response: A response whose body has been read.
        retry_after: The parsed ``retry-after`` header, if any.
        token_endpoint: The response came from the OAuth token endpoint, whose error body is
            ``{"error": ..., "error_description": ...}``.

    What a server echoed of the request's secrets was scrubbed from the answer as it came off the
    wire (`box_sessions._sending._echoes`), before it reaches here.
    """
    content = response.content
    body = json_object(content)
    if token_endpoint and "error" in body:
        code = _str_or_none(body.get("error"))
        message = _str_or_none(body.get("error_description")) or code
    else:
        code = _str_or_none(body.get("code"))
        message = _str_or_none(body.get("message"))
    context_info = body.get("context_info")
    cls = _error_class(response.status_code, token_endpoint=token_endpoint)
    return cls(
        message or _fallback_message(response, content),
        status=response.status_code,
        code=code,
        request_id=_str_or_none(body.get("request_id")) or _str_or_none(response.headers.get("box-request-id")),
        help_url=_str_or_none(body.get("help_url")),
        context_info=context_info if isinstance(context_info, dict) else None,
        retry_after=retry_after,
        headers=response.headers,
    )
