"""httpx's exceptions mapped to this package's errors, in one table."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from .._errors import BoxConnectionError, BoxError, BoxTimeoutError
from .._http import httpx

__all__ = ["map_httpx_errors"]

# Most specific first: a timeout is a transport error too. httpx's timeout texts add nothing.
_MAPPING: tuple[tuple[type[httpx.HTTPError], type[BoxError], str], ...] = (
    (httpx.TimeoutException, BoxTimeoutError, "{what} timed out ({name})"),
    (httpx.TransportError, BoxConnectionError, "{what} failed: {name}: {exc}"),
    (httpx.HTTPError, BoxError, "{what} failed: {name}: {exc}"),
)


@contextlib.contextmanager
def map_httpx_errors(what: str) -> Iterator[None]:
    """Raise an httpx exception from the block as the matching `BoxError`, chained.

    Args:
        what: The request, for the message (``"POST /2.0/users/terminate_sessions"``).
    """
    try:
        yield
    except httpx.HTTPError as exc:
        box_class, template = next((box, text) for cls, box, text in _MAPPING if isinstance(exc, cls))
        raise box_class(template.format(what=what, name=type(exc).__name__, exc=exc)) from exc
