"""`Sender`: one Box API call over the client's `httpx.AsyncClient`, from the retry rules to the bytes on the wire.

It knows requests and answers, nothing of batches or endpoints. As httpx writes its client
(``send`` → ``_send_handling_auth`` → ``_send_handling_redirects`` → ``_send_single_request``),
each concern of a send has one method on the way down, and keeps its own state:

- `Sender.post_json`: the call's wall-clock deadline;
- ``_send_handling_retries``: the retry rules, the job's budget (`Attempts`, tenacity);
- ``_send_handling_auth``: the bearer token, one refresh and one resend after a 401, and the
  typed error of an error answer;
- ``_send_handling_hedging``: a second copy of a stalled request that is safe to send twice,
  paced like any request;
- ``_send_handling_pacing``: a slot of the rate limit, never inside the cool-down, and the answer
  recorded (`Pacer`);
- ``_send_single_request``: one request on the wire, through the connection gate, its answer
  read up to a limit, httpx's errors mapped.

The token request takes a short path of its own (`Sender.post_token_form`): the retry rules and
one request on the wire; it is neither paced, nor authenticated, nor hedged.
"""

from __future__ import annotations

import copy
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import attrs

from .._auth import BoxAuth
from .._clock import Clock
from .._errors import BoxAPIError, BoxError, BoxTimeoutError, error_from_response, with_note
from .._http import httpx
from .._pacing import Pacer
from .._shared import Shared, ShareHealth
from .._tasks import LoopBinding, time_limit
from .._telemetry import Telemetry
from ._dispatch import Dispatcher, Lifecycle
from ._gate import Gate, pool_size
from ._hedge import Hedger
from ._hooks import CallObserver
from ._policy import RetryBudget, RetryPolicy, parse_retry_after
from ._request import Attempt, Request
from ._retrying import Attempts, Final
from ._wire import Wire

__all__ = ["Sender"]

logger = logging.getLogger("box_sessions")

# Notes added to a 401's message.
_DEVELOPER_401_NOTE = (
    "the developer token expired or was revoked; developer tokens last 60 minutes "
    "and cannot be refreshed: make a new one"
)
_FRESH_401_NOTE = (
    "Box refused a freshly issued token; check the app's scopes and that it is authorized in the enterprise"
)

#: What a send below the retry layer takes: the call, and the attempt under way.
_Send = Callable[[Request, Attempt], Awaitable[httpx.Response]]


class Sender:
    """Sends Box API calls with a deadline, retries and auth, through its `Dispatcher`. Private to the package."""

    def __init__(
        self,
        *,
        auth: BoxAuth,
        base_url: httpx.URL,
        token_url: httpx.URL,
        http_client: httpx.AsyncClient,
        timeout: httpx.Timeout,
        retry: RetryPolicy,
        clock: Clock,
        headers: Mapping[str, str],
        pacer: Pacer,
        as_user: str | None = None,
        rng: random.Random | None = None,
        shared: Shared | None = None,
        health: ShareHealth | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.auth = auth
        self.base_url = base_url
        self.token_url = token_url
        self.retry = retry
        self.clock = clock
        self.as_user = as_user
        self.shared = shared
        self.health = health or ShareHealth(clock)
        self.telemetry = telemetry or Telemetry()
        self._lifecycle = Lifecycle()
        self._loop = LoopBinding()
        self._headers = dict(headers)
        self._rng = rng or random.Random()
        self._urls: dict[str, httpx.URL] = {}  # each API path's URL, parsed once
        # Requests wait for a connection in the gate, in order, never in httpcore's pool.
        wire = Wire(http_client, Gate(pool_size(http_client)), timeout)
        self._dispatch = Dispatcher(
            pacer=pacer, hedger=Hedger(), wire=wire, clock=clock, lifecycle=self._lifecycle, telemetry=self.telemetry
        )

    @property
    def pacer(self) -> Pacer:
        """The client's rate limit and 429 cool-down."""
        return self._dispatch.pacer

    @property
    def hedger(self) -> Hedger:
        """The client's latencies, and the second copies it sent."""
        return self._dispatch.hedger

    @property
    def timeout(self) -> httpx.Timeout:
        """httpx's timeouts of one attempt."""
        return self._dispatch.wire.timeout

    @property
    def closed(self) -> bool:
        """Whether this sender, or the one it was derived from, was closed."""
        return self._lifecycle.closed

    def close(self) -> None:
        """Stop sending: every later attempt, and every wait that ends, raises `ClientClosedError`."""
        self._lifecycle.close()

    def derive(self, *, timeout: httpx.Timeout, retry: RetryPolicy, as_user: str | None) -> Sender:
        """A sender with other options that shares the rest: connections, gate, token cache, pacing, hedging.

        Closing it leaves this one open; closing this one closes it too.
        """
        child = copy.copy(self)
        child.retry, child.as_user = retry, as_user
        child._lifecycle = Lifecycle(self._lifecycle)  # noqa: SLF001 - a Sender setting up its own kind
        wire = Wire(self._dispatch.wire.http, self._dispatch.wire.gate, timeout)
        child._dispatch = self._dispatch.derive(wire=wire, lifecycle=child._lifecycle)  # noqa: SLF001 - the same
        return child

    def check_loop(self) -> None:
        """Raise `RuntimeError` in an event loop other than the first one (httpx's connections belong to that one)."""
        self._loop.check("this BoxClient", "create one client per event loop")

    async def post_json(
        self,
        path: str,
        body: Any,
        *,
        hedge: bool = False,
        observer: CallObserver | None = None,
        budget: RetryBudget | None = None,
    ) -> httpx.Response:
        """POST ``body`` as JSON to ``/2.0{path}`` with auth, retries and pacing; return the 2xx answer.

        ``hedge``: sending it twice is harmless (a stalled request may be overtaken by a second
        copy); ``observer`` is told of each request, answer and retry; ``budget`` is a retry quota
        shared with other calls (a bulk job's).

        Raises:
            BoxAPIError: Box answered an error status (a subclass for each status family).
            BoxTimeoutError: every attempt timed out, or the deadline passed.
            BoxConnectionError: every attempt failed to connect.
        """
        self.check_loop()
        url = self._urls.get(path)
        if url is None:
            url = self._urls[path] = self.base_url.copy_with(path=self.base_url.path.rstrip("/") + "/2.0" + path)
        hedge = hedge and self.retry.hedge
        request = Request(url, body, None, self._deadline(), hedge, budget, observer, self.retry.max_retry_after)
        return await self._within_deadline(request, self._send_handling_auth)

    async def post_token_form(self, url: httpx.URL, form: Mapping[str, str]) -> httpx.Response:
        """POST a form to the token endpoint with the retry rules only; the auth method reads the 2xx answer."""
        return await self._within_deadline(Request(url, None, form, self._deadline()), self._send_token_request)

    def _deadline(self) -> float | None:
        total = self.retry.total_timeout
        return None if total is None else self.clock.monotonic() + total

    async def _within_deadline(self, request: Request, send: _Send) -> httpx.Response:
        # The deadline holds in wall-clock time too, whatever the server does: a server that drips
        # one byte at a time defeats httpx's per-read timeouts, not this one.
        total = self.retry.total_timeout
        try:
            async with time_limit(total):
                return await self._send_handling_retries(request, send)
        except TimeoutError:
            raise BoxTimeoutError(f"{request.what}: the call's deadline of {total:g} s passed") from None

    async def _send_handling_retries(self, request: Request, send: _Send) -> httpx.Response:
        attempts = Attempts(self.retry, request, clock=self.clock, rng=self._rng, telemetry=self.telemetry)
        try:
            async for attempt in attempts.retrying():
                with attempt:
                    response = await send(request, attempts.begin(attempt.retry_state.attempt_number))
                    attempts.succeeded()
                    return response
        except Final as final:
            raise final.error from final.error.__cause__
        except BoxError as error:
            attempts.failed(error)
            raise
        raise AssertionError("tenacity ended without an outcome")  # pragma: no cover - reraise=True

    async def _send_handling_auth(self, request: Request, attempt: Attempt) -> httpx.Response:
        """Send with the bearer token; after a 401, refresh the token once and send again."""
        refreshed = False
        while True:
            token, fresh = await self._token(request)
            headers = {**self._headers, "Authorization": f"Bearer {token}"}
            if self.as_user is not None:
                headers["As-User"] = self.as_user
            response = await self._dispatch.send(request, headers, attempt)
            if response.status_code == 401 and self.auth.can_refresh and not (fresh or refreshed):
                refreshed = True
                self.auth.invalidate(token, self.token_url)
                logger.info("%s answered 401; refreshing the token once", request.what)
                attempt = attrs.evolve(attempt, resends=attempt.resends + 1)
                self.telemetry.retry("401")
                if request.observer is not None:
                    request.observer.retrying("401")
                continue
            if response.is_success:
                return response
            note = None
            if response.status_code == 401:
                # A token just issued and refused again would loop: the credentials are refused.
                note = _FRESH_401_NOTE if self.auth.can_refresh else _DEVELOPER_401_NOTE
            raise self._error(response, request, note)

    async def _token(self, request: Request) -> tuple[str, bool]:
        try:
            return await self.auth.get_token(
                self.post_token_form,
                self.token_url,
                self.clock,
                deadline=request.deadline,
                shared=self.shared,
                health=self.health,
            )
        except BoxError as error:
            # The token request was retried on its own; retrying the API call would multiply that.
            raise Final(error) from error

    async def _send_token_request(self, request: Request, attempt: Attempt) -> httpx.Response:
        response = await self._dispatch.send_single(request, self._headers, attempt)
        if not response.is_success:
            raise self._error(response, request)
        return response

    def _error(self, response: httpx.Response, request: Request, note: str | None = None) -> BoxAPIError:
        """The typed error of an error answer (already scrubbed of the request's secrets by the wire)."""
        retry_after = parse_retry_after(response.headers.get("retry-after"), now=self.clock.time())
        error = error_from_response(response, retry_after=retry_after, token_endpoint=request.form is not None)
        return with_note(error, note) if note else error
