"""One request on the wire: sent, its answer read up to a limit, the whole of it bounded in wall-clock time."""

from __future__ import annotations

from collections.abc import Mapping

from .._errors import BoxTimeoutError
from .._http import httpx
from .._tasks import time_limit
from ._body import read_limited
from ._echoes import echoes_of, in_flight, scrub_answer, watch_http_logs
from ._gate import Gate
from ._httpx_errors import map_httpx_errors
from ._request import Request

__all__ = ["Wire", "attempt_bounds", "attempt_limit", "cap_timeout", "send_once"]


def attempt_limit(timeout: httpx.Timeout) -> float | None:
    """Wall-clock seconds one attempt may take, connect to last byte: the largest of httpx's timeouts."""
    values = [v for v in (timeout.connect, timeout.read, timeout.write, timeout.pool) if v is not None]
    return max(values) if values else None


def cap_timeout(timeout: httpx.Timeout, remaining: float) -> httpx.Timeout:
    """httpx's timeouts, none longer than ``remaining`` seconds."""

    def cap(value: float | None) -> float:
        return remaining if value is None else min(value, remaining)

    return httpx.Timeout(
        connect=cap(timeout.connect),
        read=cap(timeout.read),
        write=cap(timeout.write),
        pool=cap(timeout.pool),
    )


def attempt_bounds(timeout: httpx.Timeout, remaining: float | None) -> tuple[httpx.Timeout, float | None]:
    """httpx's timeouts and the wall-clock bound of one attempt, none past the ``remaining`` seconds of its call."""
    limit = attempt_limit(timeout)
    if remaining is None:
        return timeout, limit
    return cap_timeout(timeout, remaining), remaining if limit is None else min(limit, remaining)


async def send_once(http: httpx.AsyncClient, request: httpx.Request, *, limit: float | None) -> httpx.Response:
    """Send ``request`` and read its answer (up to the answer limit) within ``limit`` seconds.

    A server that drips one byte at a time defeats httpx's per-read timeouts, not this bound.

    Raises:
        BoxTimeoutError: the answer was not complete within ``limit``.
        httpx.HTTPError: the request failed (the caller maps it).
    """
    try:
        async with time_limit(limit):
            # Never follow a redirect: a caller's client may be set to, and a bearer token or a
            # termination must not be sent anywhere Box did not name in the first place.
            response = await http.send(request, stream=True, follow_redirects=False)
            return await read_limited(response)
    except TimeoutError:
        raise BoxTimeoutError(f"{request.method} {request.url.path}: no complete answer within {limit:g} s") from None


class Wire:
    """One request on the wire: through the connection gate, bounded as a whole, its answer read up to a limit.

    Args:
        http: The client's `httpx.AsyncClient`.
        gate: The queue for its connections (see `Gate`), shared by every sender over ``http``.
        timeout: httpx's timeouts of one attempt.
    """

    def __init__(self, http: httpx.AsyncClient, gate: Gate, timeout: httpx.Timeout) -> None:
        self.http = http
        self.gate = gate
        self.timeout = timeout
        watch_http_logs()

    async def send(self, request: Request, headers: Mapping[str, str], *, remaining: float | None) -> httpx.Response:
        """Send ``request`` within the ``remaining`` seconds of its call (``None``: no deadline).

        Raises:
            BoxError: the request failed (httpx's errors mapped: `BoxTimeoutError`, `BoxConnectionError`, ...).
        """
        timeout, limit = attempt_bounds(self.timeout, remaining)
        sent = self.http.build_request(
            "POST", request.url, json=request.json_body, data=request.form, headers=headers, timeout=timeout
        )
        echoes = echoes_of(request.form, headers)
        with in_flight(echoes), map_httpx_errors(request.what, echoes):
            async with self.gate.slot(timeout.pool):
                response = await send_once(self.http, sent, limit=limit)
        # A token endpoint's 2xx body holds the new tokens: kept as it came.
        return scrub_answer(response, echoes, keep_body=request.form is not None and response.is_success)
