"""`Transport`: one Box API call over the client's `httpx.AsyncClient`, from the cool-down to the typed answer.

It knows requests and answers, nothing of batches or endpoints. One call (`Transport.post_json`):

1. waits out the client's shared cool-down (set by any 429 of this client) and reserves a slot of
   the rate limiter;
2. gets a token (single-flight, see `box_sessions._auth`), sends, and on a 401 refreshes the token
   once and resends;
3. maps the answer or the network failure to a typed `BoxError`;
4. lets the retry loop (`_retrying`) decide what comes next.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from typing import Any

import httpx

from .._auth import BoxAuth
from .._clock import Clock
from .._errors import (
    BoxAPIError,
    BoxError,
    BoxTimeoutError,
    ClientClosedError,
    error_from_response,
    with_note,
)
from .._shared import Shared
from .._tasks import LoopBinding, time_limit
from ._gate import Gate, pool_size
from ._hedge import Hedger
from ._httpx_errors import map_httpx_errors
from ._pacing import Pacing
from ._policy import RetryBudget, RetryPolicy, parse_retry_after
from ._ratelimit import RateLimiter
from ._retrying import Call, CallObserver, Final, run_attempts
from ._wire import attempt_limit, cap_timeout, send_once

__all__ = ["Transport"]

logger = logging.getLogger("box_sessions")

# Notes added to a 401's message.
_DEVELOPER_401_NOTE = (
    "the developer token expired or was revoked; developer tokens last 60 minutes "
    "and cannot be refreshed: make a new one"
)
_FRESH_401_NOTE = (
    "Box refused a freshly issued token; check the app's scopes and that it is authorized in the enterprise"
)


# Fields of a token request that are not secret; every other value is scrubbed from what the
# answer's error keeps (client secret, refresh token, assertion).
_PUBLIC_FORM_FIELDS = frozenset({"grant_type", "client_id", "box_subject_type", "box_subject_id"})


class Transport:
    """Sends Box API calls with auth, retries, pacing, cool-down and deadline. Private to the package."""

    def __init__(
        self,
        *,
        auth: BoxAuth,
        base_url: httpx.URL,
        http_client: httpx.AsyncClient,
        timeout: httpx.Timeout,
        retry: RetryPolicy,
        clock: Clock,
        headers: Mapping[str, str],
        limiter: RateLimiter | None = None,
        as_user: str | None = None,
        rng: random.Random | None = None,
        shared: Shared | None = None,
    ) -> None:
        self.auth = auth
        self.base_url = base_url
        self.retry = retry
        self.clock = clock
        self.as_user = as_user
        self.shared = shared
        self.pacing = Pacing(clock, limiter)
        self.hedger = Hedger()
        # A gateway in front of Box (``https://gw.example.com/box``) serves the token endpoint too.
        self.token_url = base_url.copy_with(path=base_url.path.rstrip("/") + "/oauth2/token")
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
        """POST ``body`` as JSON to ``/2.0{path}`` with auth and retries; return the 2xx response.

        Args:
            path: The API path after ``/2.0``.
            body: The JSON body.
            hedge: The caller knows that sending this request twice is harmless: a stalled
                attempt may be overtaken by a second copy (when the retry policy allows hedging).
            observer: Counts requests, retries and 429s for the caller.
            budget: A retry quota shared with other calls (a bulk job's); when it is spent the
                call is not retried, and its error says so.

        Raises:
            BoxAPIError: Box answered an error status (a subclass for each status family).
            BoxTimeoutError: every attempt timed out, or the deadline passed.
            BoxConnectionError: every attempt failed to connect.
        """
        self.check_loop()
        url = self.base_url.copy_with(path=self.base_url.path.rstrip("/") + "/2.0" + path)
        return await self._call(url, json_body=body, form=None, hedge=hedge, observer=observer, budget=budget)

    def check_loop(self) -> None:
        """Refuse to run in an event loop other than the first one this client ran in.

        httpx's connections belong to the loop that opened them; in another loop they fail at
        random. Raises `RuntimeError` every time, so the mistake cannot pass by chance.
        """
        self._loop.check("this BoxClient", "create one client per event loop")

    def close(self) -> None:
        """Stop sending: every later attempt, and every wait that ends, raises `ClientClosedError`."""
        self.closed = True

    async def _post_token_form(self, url: httpx.URL, form: Mapping[str, str]) -> httpx.Response:
        """POST a form to the token endpoint with the client's retries; the auth reads the answer."""
        return await self._call(url, json_body=None, form=form)

    async def _call(
        self,
        url: httpx.URL,
        *,
        json_body: Any,
        form: Mapping[str, str] | None,
        hedge: bool = False,
        observer: CallObserver | None = None,
        budget: RetryBudget | None = None,
    ) -> httpx.Response:
        total = self.retry.total_timeout
        call = Call(
            url=url,
            json_body=json_body,
            form=form,
            observer=observer,
            budget=budget,
            deadline=None if total is None else self.clock.monotonic() + total,
            hedge=hedge,
        )
        # The deadline holds in wall-clock time too, whatever the server does: a server that drips
        # one byte at a time defeats httpx's per-read timeouts, not this one.
        try:
            async with time_limit(total):
                return await run_attempts(
                    self._attempt,
                    call,
                    policy=self.retry,
                    clock=self.clock,
                    rng=self._rng,
                    cooldown=self.pacing.cooldown,
                )
        except TimeoutError:
            raise BoxTimeoutError(f"POST {url.path}: the call's deadline of {total:g} s passed") from None

    # -- one attempt -----------------------------------------------------------------------

    async def _attempt(self, call: Call) -> httpx.Response:
        self._check_open()
        await self.pacing.before_send(call, max_retry_after=self.retry.max_retry_after)
        self._check_open()
        response, token = await self._send_handling_auth(call)
        if response.is_success:
            await self.pacing.on_answer(call, response.status_code, None)
            return response
        error = self._error(response, call, token)
        await self.pacing.on_answer(call, error.status, error.retry_after)
        if error.status == 429 and call.observer is not None:
            call.observer.rate_limited += 1
        raise error

    def _check_open(self) -> None:
        if self.closed:
            raise Final(ClientClosedError("the client was closed; this request was not sent"))

    async def _send_handling_auth(self, call: Call) -> tuple[httpx.Response, str]:
        """Send with the bearer token; after a 401, refresh the token once and send again.

        Returns the answer and the token it was sent with ("" for the token request).
        """
        while True:
            headers = dict(self._headers)
            token, fetched = "", False
            if call.authenticated:
                token, fetched = await self._token(call)
                headers["Authorization"] = f"Bearer {token}"
                if self.as_user is not None:
                    headers["As-User"] = self.as_user
            response = await self._send(call, headers)
            if response.status_code != 401 or not call.authenticated:
                return response, token
            if not self.auth.can_refresh:
                raise self._error(response, call, token, note=_DEVELOPER_401_NOTE)
            if fetched or call.refreshed_after_401:
                # A token that was just issued is refused: refreshing again would loop.
                raise self._error(response, call, token, note=_FRESH_401_NOTE)
            call.refreshed_after_401 = True
            self.auth.invalidate(token, self.token_url)
            logger.info("POST %s answered 401; refreshing the token once", call.url.path)

    async def _token(self, call: Call) -> tuple[str, bool]:
        try:
            return await self.auth.get_token(
                self._post_token_form, self.token_url, self.clock, deadline=call.deadline, shared=self.shared
            )
        except BoxError as error:
            # The token request was retried on its own; retrying the API call would multiply that.
            raise Final(error) from error

    async def _send(self, call: Call, headers: dict[str, str]) -> httpx.Response:
        timeout = self._timeout
        remaining = call.remaining(self.clock)
        if remaining is not None:
            if remaining <= 0:
                raise Final(BoxTimeoutError("the call's deadline passed before the request could be sent"))
            timeout = cap_timeout(timeout, remaining)
        delay = self.hedger.delay if call.hedge and call.authenticated and self.retry.hedge else None
        with map_httpx_errors(f"POST {call.url.path}"):
            if delay is None:
                response = await self._post(call, headers, timeout)
            else:
                response = await self.hedger.race(
                    lambda: self._post(call, headers, timeout),
                    lambda: self._second_copy(call, headers, timeout),
                    delay,
                    on_hedge=lambda: logger.info(
                        "POST %s has not answered in %.2f s; sending a second copy (the caller says that is harmless)",
                        call.url.path,
                        delay,
                    ),
                )
        return response

    async def _post(self, call: Call, headers: dict[str, str], timeout: httpx.Timeout) -> httpx.Response:
        """One request on the wire, bounded as a whole by the attempt's time; raises httpx's exceptions."""
        self._check_open()
        if call.observer is not None:
            call.observer.requests += 1
        started = self.clock.monotonic()
        request = self._http.build_request(
            "POST", call.url, json=call.json_body, data=call.form, headers=headers, timeout=timeout
        )
        remaining = call.remaining(self.clock)
        limit = attempt_limit(self._timeout)
        if remaining is not None:
            limit = remaining if limit is None else min(limit, remaining)
        try:
            async with self._gate.slot(timeout.pool):
                response = await send_once(self._http, request, limit=limit)
        except httpx.HTTPError as exc:
            if self.closed:
                raise Final(ClientClosedError("the client was closed while this request was in flight")) from exc
            raise
        if call.authenticated and response.is_success:
            self.hedger.record(self.clock.monotonic() - started)
        return response

    async def _second_copy(self, call: Call, headers: dict[str, str], timeout: httpx.Timeout) -> httpx.Response:
        if self.pacing.limiter is not None:
            await self.pacing.limiter.acquire()  # a second copy is a request like any other
        return await self._post(call, headers, timeout)

    def _error(self, response: httpx.Response, call: Call, token: str, note: str | None = None) -> BoxAPIError:
        error = error_of(response, call, token, now=self.clock.time())
        return with_note(error, note) if note else error


def error_of(response: httpx.Response, call: Call, token: str, *, now: float) -> BoxAPIError:
    """The typed error of an error answer, scrubbed of every secret its request carried."""
    retry_after = parse_retry_after(response.headers.get("retry-after"), now=now)
    form = call.form or {}
    secrets = [token, *(value for key, value in form.items() if key not in _PUBLIC_FORM_FIELDS)]
    return error_from_response(
        response, retry_after=retry_after, token_endpoint=not call.authenticated, secrets=secrets
    )
