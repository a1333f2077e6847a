"""What a server sends back, scrubbed of the secrets its request carried, before any layer keeps it.

A hostile or broken server may echo a request's secret anywhere, not only in an error's body: in
Box's ``box-request-id`` of an accepted answer (kept in reports and spans), in any header's name or
value, in the reason phrase, or in a malformed header line that the HTTP library quotes in its
exception (and in its own log records). `Wire` scrubs each answer, each exception, and the HTTP
stack's log records while the request is in flight, of every spelling of the secrets it carried:
the bearer token, or the token request's client secret, refresh token or assertion.

A token endpoint's 2xx body is kept as it came: it holds the new tokens, which are no secret of
the request (and may equal one, for a server that does not rotate refresh tokens).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
from collections.abc import Iterator, Mapping

import attrs

from .._http import httpx
from .._redact import scrub_text, secret_spellings
from ._body import WIRE_HEADERS

__all__ = [
    "HTTP_LOGGERS",
    "NO_ECHOES",
    "PUBLIC_FORM_FIELDS",
    "Echoes",
    "echoes_of",
    "in_flight",
    "request_secrets",
    "scrub_answer",
    "scrub_chain",
    "watch_http_logs",
]

#: Fields of a token request that are not secret; every other value is scrubbed from what comes back.
PUBLIC_FORM_FIELDS = frozenset({"grant_type", "client_id", "box_subject_type", "box_subject_id"})
_BEARER = "Bearer "
#: The loggers of both HTTP stacks, which quote what a server sent (a reason phrase, headers, errors).
HTTP_LOGGERS = (
    "httpx",
    "httpx2",
    *(
        f"{core}.{part}"
        for core in ("httpcore", "httpcore2")
        for part in ("connection", "http11", "http2", "proxy", "socks")
    ),
)


@attrs.frozen
class Echoes:
    """Every spelling of a request's secrets, as text and as bytes, longest first."""

    texts: tuple[str, ...]
    raw: tuple[bytes, ...]

    def scrub(self, text: str) -> str:
        return scrub_text(text, self.texts)

    def found_in(self, text: str) -> bool:
        return any(spelling in text for spelling in self.texts)


#: No secrets: nothing to scrub.
NO_ECHOES = Echoes((), ())


def request_secrets(form: Mapping[str, str] | None, headers: Mapping[str, str]) -> tuple[str, ...]:
    """What a request carries that must not come back out: its bearer token, its form's secret fields."""
    secrets = [value for key, value in (form or {}).items() if key not in PUBLIC_FORM_FIELDS]
    authorization = headers.get("Authorization", "")
    if authorization.startswith(_BEARER):
        secrets.append(authorization[len(_BEARER) :])
    return tuple(secrets)


@functools.lru_cache(maxsize=32)
def _echoes(secrets: tuple[str, ...]) -> Echoes:
    texts = tuple(secret_spellings(secrets))
    return Echoes(texts, tuple(text.encode() for text in texts)) if texts else NO_ECHOES


def echoes_of(form: Mapping[str, str] | None, headers: Mapping[str, str]) -> Echoes:
    """The spellings to scrub from what comes back to a request with ``form`` and ``headers``."""
    return _echoes(request_secrets(form, headers))


def scrub_answer(response: httpx.Response, echoes: Echoes, *, keep_body: bool) -> httpx.Response:
    """``response``, or a copy with every spelling of the secrets replaced by ``***``.

    The reason phrase, every header's name and value and, unless ``keep_body``, the body.
    """
    if not echoes.texts:
        return response
    encoding = response.headers.encoding
    # Names as they came, not lower-cased: a name may echo a secret too.
    items = [(k.decode(encoding), v.decode(encoding)) for k, v in response.headers.raw]
    reason = response.reason_phrase
    head_dirty = echoes.found_in(reason) or any(echoes.found_in(k) or echoes.found_in(v) for k, v in items)
    content = response.content
    body_dirty = not keep_body and any(spelling in content for spelling in echoes.raw)
    if not (head_dirty or body_dirty):
        return response
    if body_dirty:
        content = echoes.scrub(content.decode("utf-8", errors="replace")).encode()
    extensions = {"reason_phrase": echoes.scrub(reason).encode()}
    if "http_version" in response.extensions:
        extensions["http_version"] = response.extensions["http_version"]
    return httpx.Response(
        response.status_code,
        headers=[(echoes.scrub(k), echoes.scrub(v)) for k, v in items if k.lower() not in WIRE_HEADERS],
        content=content,
        request=response.request,
        extensions=extensions,
    )


def scrub_chain(error: BaseException, echoes: Echoes) -> bool:
    """Scrub the text arguments of ``error`` and of every exception it came from; whether none shows a secret now.

    An exception whose text is not its arguments (a ``__str__`` of its own) may still show one:
    the caller then leaves the chain out of what it raises.
    """
    clean = True
    seen: set[int] = set()
    todo: list[BaseException] = [error]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        current.args = tuple(echoes.scrub(arg) if isinstance(arg, str) else arg for arg in current.args)
        try:
            shown = f"{current}{current.args!r}"
        except Exception:  # noqa: BLE001 - a __str__ that fails shows nothing, but is not trusted either
            shown = ""
            clean = False
        clean = clean and not echoes.found_in(shown)
        todo += [linked for linked in (current.__cause__, current.__context__) if linked is not None]
    return clean


# -- the HTTP stack's own log records --------------------------------------------------------------

_IN_FLIGHT: contextvars.ContextVar[Echoes] = contextvars.ContextVar("box_sessions_in_flight", default=NO_ECHOES)


class _ScrubInFlight(logging.Filter):
    """Scrubs a record of the secrets of the request in flight in the task that logs it."""

    def filter(self, record: logging.LogRecord) -> bool:
        echoes = _IN_FLIGHT.get()
        if echoes.texts:
            text = record.getMessage()
            if echoes.found_in(text):
                record.msg, record.args = echoes.scrub(text), None
        return True


_FILTER = _ScrubInFlight()


def watch_http_logs() -> None:
    """Put the filter on the HTTP stacks' loggers, once: records of others' requests pass untouched."""
    for name in HTTP_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


@contextlib.contextmanager
def in_flight(echoes: Echoes) -> Iterator[None]:
    """While the block runs in this task, records of the HTTP stack are scrubbed of ``echoes``."""
    token = _IN_FLIGHT.set(echoes)
    try:
        yield
    finally:
        _IN_FLIGHT.reset(token)
