"""httpx's exceptions mapped to this package's errors, in one table."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from .._errors import BoxConnectionError, BoxError, BoxTimeoutError
from .._http import httpx
from ._echoes import NO_ECHOES, Echoes, scrub_chain

__all__ = ["map_httpx_errors"]

# Most specific first: a timeout is a transport error too. httpx's timeout texts add nothing.
_MAPPING: tuple[tuple[type[httpx.HTTPError], type[BoxError], str], ...] = (
    (httpx.TimeoutException, BoxTimeoutError, "{what} timed out ({name})"),
    (httpx.TransportError, BoxConnectionError, "{what} failed: {name}: {exc}"),
    (httpx.HTTPError, BoxError, "{what} failed: {name}: {exc}"),
)


@contextlib.contextmanager
def map_httpx_errors(what: str, echoes: Echoes = NO_ECHOES) -> Iterator[None]:
    """Raise an httpx exception from the block as the matching `BoxError`, chained.

    Args:
        what: The request, for the message (``"POST /2.0/users/terminate_sessions"``).
        echoes: The request's secrets: scrubbed from the message and from the exceptions it is
            chained to (an HTTP library quotes a malformed header line, which may echo one). A
            chain that would still show one is left out.
    """
    try:
        yield
    except httpx.HTTPError as exc:
        box_class, template = next((box, text) for cls, box, text in _MAPPING if isinstance(exc, cls))
        error = box_class(echoes.scrub(template.format(what=what, name=type(exc).__name__, exc=exc)))
        if scrub_chain(exc, echoes):
            raise error from exc
    else:
        return
    raise error from None  # outside the handler: not even as its context
