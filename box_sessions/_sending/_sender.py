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

import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx

from .._auth import BoxAuth
from .._clock import Clock
from .._errors import BoxAPIError, BoxError, BoxTimeoutError, ClientClosedError, with_note
from .._pacing import Pacer, PacingRefused
from .._shared import Reservation, Shared
from .._tasks import LoopBinding, time_limit
from ._errors import error_of
from ._gate import Gate, pool_size
from ._hedge import Hedger
from ._hooks import CallObserver
from ._httpx_errors import map_httpx_errors
from ._policy import RetryBudget, RetryPolicy, parse_retry_after
from ._request import Request
from ._retrying import Attempts, Final
from ._wire import attempt_bounds, send_once

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

#: What a send below the retry layer takes: the call, and the back-off chosen for this attempt.
_Send = Callable[[Request, float], Awaitable[httpx.Response]]


class Sender:
    """Sends Box API calls with retries, pacing, auth, hedging and a deadline. Private to the package."""

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
    ) -> None:
        self.auth = auth
        self.base_url = base_url
        self.token_url = token_url
        self.retry = retry
        self.clock = clock
        self.pacer = pacer
        self.as_user = as_user
        self.shared = shared
        self.hedger = Hedger()
        self.closed = False
        self._loop = LoopBinding()
        self._http = http_client
        self._gate = Gate(pool_size(http_client))  # requests wait for a connection here, in order
        self._timeout = timeout
        self._headers = dict(headers)
        self._rng = rng or random.Random()

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
        url = self.base_url.copy_with(path=self.base_url.path.rstrip("/") + "/2.0" + path)
        request = Request(url, body, None, self._deadline(), hedge, budget, observer)
        return await self._within_deadline(request, self._send_handling_auth)

    async def post_token_form(self, url: httpx.URL, form: Mapping[str, str]) -> httpx.Response:
        """POST a form to the token endpoint with the retry rules only; the auth method reads the 2xx answer."""
        return await self._within_deadline(Request(url, None, form, self._deadline()), self._send_token_request)

    def check_loop(self) -> None:
        """Raise `RuntimeError` in an event loop other than the first one (httpx's connections belong to that one)."""
        self._loop.check("this BoxClient", "create one client per event loop")

    def close(self) -> None:
        """Stop sending: every later attempt, and every wait that ends, raises `ClientClosedError`."""
        self.closed = True

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
        attempts = Attempts(self.retry, request, clock=self.clock, rng=self._rng)
        try:
            async for attempt in attempts.retrying():
                with attempt:
                    attempts.begin(attempt.retry_state.attempt_number)
                    response = await send(request, attempts.backoff)
                    attempts.succeeded()
                    return response
        except Final as final:
            raise final.error from final.error.__cause__
        except BoxError as error:
            attempts.failed(error)
            raise
        raise AssertionError("tenacity ended without an outcome")  # pragma: no cover - reraise=True

    async def _send_handling_auth(self, request: Request, backoff: float) -> httpx.Response:
        """Send with the bearer token; after a 401, refresh the token once and send again."""
        refreshed = False
        while True:
            token, fresh = await self._token(request)
            headers = {**self._headers, "Authorization": f"Bearer {token}"}
            if self.as_user is not None:
                headers["As-User"] = self.as_user
            response = await self._send_handling_hedging(request, headers, backoff)
            if response.status_code == 401 and self.auth.can_refresh and not (fresh or refreshed):
                refreshed = True
                self.auth.invalidate(token, self.token_url)
                logger.info("%s answered 401; refreshing the token once", request.what)
                continue
            if response.is_success:
                return response
            note = None
            if response.status_code == 401:
                # A token just issued and refused again would loop: the credentials are refused.
                note = _FRESH_401_NOTE if self.auth.can_refresh else _DEVELOPER_401_NOTE
            raise self._error(response, request, token, note)

    async def _token(self, request: Request) -> tuple[str, bool]:
        try:
            return await self.auth.get_token(
                self.post_token_form, self.token_url, self.clock, deadline=request.deadline, shared=self.shared
            )
        except BoxError as error:
            # The token request was retried on its own; retrying the API call would multiply that.
            raise Final(error) from error

    async def _send_handling_hedging(
        self, request: Request, headers: Mapping[str, str], backoff: float
    ) -> httpx.Response:
        delay = self.hedger.delay if request.hedge and self.retry.hedge else None
        if delay is None:
            return await self._send_handling_pacing(request, headers, backoff)
        slot = await self._reserve(request)  # the first copy's wait is not the stall a second copy is for
        return await self.hedger.race(
            lambda: self._send_paced(request, headers, backoff, slot),
            lambda: self._send_handling_pacing(request, headers, backoff),  # a request like any other
            delay,
            what=request.what,
        )

    async def _send_handling_pacing(
        self, request: Request, headers: Mapping[str, str], backoff: float
    ) -> httpx.Response:
        slot = await self._reserve(request)
        return await self._send_paced(request, headers, backoff, slot)

    async def _reserve(self, request: Request) -> Reservation | None:
        """Wait for a slot; a wait the request may not make fails it, unsent."""
        self._check_open()
        try:
            slot = await self.pacer.reserve(deadline=request.deadline, max_cooldown=self.retry.max_retry_after)
        except PacingRefused as refused:
            raise Final(refused.error) from None
        self._check_open()
        return slot

    async def _send_paced(
        self, request: Request, headers: Mapping[str, str], backoff: float, slot: Reservation | None
    ) -> httpx.Response:
        """Send in ``slot`` and record the answer: a 429 holds every sender off (``retry-after``, else ``backoff``)."""
        response = await self._send_single_request(request, headers)
        cooldown = None
        if response.status_code == 429:
            retry_after = parse_retry_after(response.headers.get("retry-after"), now=self.clock.time())
            cooldown = backoff if retry_after is None else retry_after
        await self.pacer.record(slot, response.status_code, cooldown=cooldown)
        return response

    async def _send_token_request(self, request: Request, backoff: float) -> httpx.Response:
        response = await self._send_single_request(request, self._headers)
        if not response.is_success:
            raise self._error(response, request, "")
        return response

    async def _send_single_request(self, request: Request, headers: Mapping[str, str]) -> httpx.Response:
        """One request on the wire, bounded as a whole by the attempt's time; its answer read up to a limit."""
        self._check_open()
        remaining = None if request.deadline is None else request.deadline - self.clock.monotonic()
        if remaining is not None and remaining <= 0:
            raise Final(BoxTimeoutError("the call's deadline passed before the request could be sent"))
        timeout, limit = attempt_bounds(self._timeout, remaining)
        if request.observer is not None:
            request.observer.sent()
        started = self.clock.monotonic()
        sent = self._http.build_request(
            "POST", request.url, json=request.json_body, data=request.form, headers=headers, timeout=timeout
        )
        with map_httpx_errors(request.what):
            try:
                async with self._gate.slot(timeout.pool):
                    response = await send_once(self._http, sent, limit=limit)
            except httpx.HTTPError as exc:
                if self.closed:
                    raise Final(ClientClosedError("the client was closed while this request was in flight")) from exc
                raise
        if request.observer is not None:
            request.observer.answered(response.status_code)
        if request.form is None and response.is_success:
            self.hedger.record(self.clock.monotonic() - started)
        return response

    def _check_open(self) -> None:
        if self.closed:
            raise Final(ClientClosedError("the client was closed; this request was not sent"))

    def _error(self, response: httpx.Response, request: Request, token: str, note: str | None = None) -> BoxAPIError:
        error = error_of(response, form=request.form, token=token, now=self.clock.time())
        return with_note(error, note) if note else error
