"""The transport: one `httpx.AsyncClient`, bearer auth, retries, the shared cool-down, deadlines.

It knows requests and answers, nothing of batches. One call (`Transport.post_json`) is:

1. wait out the client's shared cool-down (set by any 429 of this client);
2. get a token (single-flight, see `_auth`), send, and on a 401 refresh the token once and resend;
3. map the answer or the network failure to a typed `BoxError`;
4. let tenacity decide: retry 429/500/502/503/504, timeouts and connection errors, waiting
   ``retry-after`` or an exponential back-off with full jitter, within ``max_attempts`` and the
   call's ``total_timeout``. A wait that would cross the deadline is not begun.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import math
import random
from collections.abc import Mapping
from typing import Any

import attrs
import httpx
import tenacity as _t

from ._auth import BoxAuth, TokenGrant
from ._clock import Clock
from ._errors import (
    AuthenticationError,
    BoxAPIError,
    BoxConnectionError,
    BoxError,
    BoxTimeoutError,
    RateLimitError,
    error_from_response,
    with_note,
)
from ._ratelimit import RateLimiter
from ._retry import RetryBudget, RetryPolicy, parse_retry_after

__all__ = ["CallObserver", "Transport"]

logger = logging.getLogger("box_sessions")

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})

#: Hedging: answers of the last this many successful API requests set the hedge delay ...
LATENCY_WINDOW = 200
#: ... once there are at least this many of them ...
LATENCY_MIN_SAMPLES = 20
#: ... as twice their 95th percentile, and never less than this many seconds.
HEDGE_MIN_DELAY = 0.2

#: Box's documented access-token lifetime, assumed when a token answer has no usable expires_in.
DEFAULT_TOKEN_LIFETIME = 3600.0

# Notes added to a 401's message.
_DEVELOPER_401_NOTE = (
    "the developer token expired or was revoked; developer tokens last 60 minutes "
    "and cannot be refreshed: make a new one"
)
_FRESH_401_NOTE = (
    "Box refused a freshly issued token; check the app's scopes and that it is authorized in the enterprise"
)


class _Final(Exception):  # noqa: N818 - a private carrier, not an error users see
    """Carries an error out of the retry loop untouched: it must not be retried.

    Used for errors of the token request (already retried on their own) and for waits that
    would cross the deadline.
    """

    def __init__(self, error: BoxError) -> None:
        super().__init__()
        self.error = error


@attrs.define
class CallObserver:
    """Counts what one caller's calls cost; the bulk manager keeps one per job."""

    requests: int = 0
    retries: int = 0
    rate_limited: int = 0


@attrs.define
class _Call:
    """One call: what to send, and what it remembers across its attempts."""

    url: httpx.URL
    json_body: Any
    form: Mapping[str, str] | None
    observer: CallObserver | None
    budget: RetryBudget | None
    deadline: float | None
    refreshed_after_401: bool = False
    budget_refused: bool = False
    reserved_at: float = -math.inf  # when this attempt's rate-limiter slot was reserved

    @property
    def authenticated(self) -> bool:
        """API calls carry the bearer token; the token request (a form) does not."""
        return self.form is None


def _cap_timeout(timeout: httpx.Timeout, remaining: float) -> httpx.Timeout:
    def cap(value: float | None) -> float:
        return remaining if value is None else min(value, remaining)

    return httpx.Timeout(
        connect=cap(timeout.connect),
        read=cap(timeout.read),
        write=cap(timeout.write),
        pool=cap(timeout.pool),
    )


class Transport:
    """Sends Box API calls with auth, retries, cool-down and deadline. Private to the package."""

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
    ) -> None:
        self.auth = auth
        self.base_url = base_url
        self.retry = retry
        self.clock = clock
        self._http = http_client
        self._timeout = timeout
        self._headers = dict(headers)
        self._rng = rng or random.Random()
        self.limiter = limiter
        self.as_user = as_user
        self._latencies: collections.deque[float] = collections.deque(maxlen=LATENCY_WINDOW)
        self._hedge_after: float | None = None
        self.hedges = 0
        self._cooldown_until = -math.inf
        self.token_url = base_url.copy_with(path="/oauth2/token")

    # -- public to the package -------------------------------------------------------------

    async def post_json(
        self,
        path: str,
        body: Any,
        *,
        observer: CallObserver | None = None,
        budget: RetryBudget | None = None,
    ) -> httpx.Response:
        """POST ``body`` as JSON to ``/2.0{path}`` with auth and retries; return the 2xx response.

        Args:
            path: The API path after ``/2.0``.
            body: The JSON body.
            observer: Counts requests, retries and 429s for the caller.
            budget: A retry quota shared with other calls (a bulk job's); when it is spent the
                call is not retried, and its error says so.

        Raises:
            BoxAPIError: Box answered an error status (a subclass for each status family).
            BoxTimeoutError: every attempt timed out, or the deadline passed.
            BoxConnectionError: every attempt failed to connect.
        """
        url = self.base_url.copy_with(path=self.base_url.path.rstrip("/") + "/2.0" + path)
        return await self._call(url, json_body=body, form=None, observer=observer, budget=budget)

    @property
    def cooldown_remaining(self) -> float:
        """Seconds left of the client's shared cool-down after a 429 (0 when none)."""
        return max(0.0, self._cooldown_until - self.clock.monotonic())

    # -- the retry loop --------------------------------------------------------------------

    async def _call(
        self,
        url: httpx.URL,
        *,
        json_body: Any,
        form: Mapping[str, str] | None,
        observer: CallObserver | None,
        budget: RetryBudget | None = None,
    ) -> httpx.Response:
        policy = self.retry
        total = policy.total_timeout
        call = _Call(
            url=url,
            json_body=json_body,
            form=form,
            observer=observer,
            budget=budget,
            deadline=None if total is None else self.clock.monotonic() + total,
        )

        def stop(rs: _t.RetryCallState) -> bool:
            if rs.attempt_number >= policy.max_attempts:
                return True
            if call.deadline is not None and self.clock.monotonic() + rs.upcoming_sleep > call.deadline:
                return True
            if budget is not None:
                error = rs.outcome.exception() if rs.outcome is not None else None
                if not budget.withdraw(timeout=isinstance(error, BoxTimeoutError)):
                    call.budget_refused = True
                    return True
            return False

        def before_sleep(rs: _t.RetryCallState) -> None:
            assert rs.outcome is not None  # noqa: S101 - tenacity sets it before sleeping
            error = rs.outcome.exception()
            if isinstance(error, RateLimitError):
                # One shared cool-down: every request of this client holds off, not only this one.
                self._cooldown_until = max(self._cooldown_until, self.clock.monotonic() + rs.upcoming_sleep)
            if observer is not None:
                observer.retries += 1
            logger.info(
                "Retrying POST %s after %s (attempt %d of %d), waiting %.2f s",
                url.path,
                _describe(error),
                rs.attempt_number,
                policy.max_attempts,
                rs.upcoming_sleep,
            )

        retrying = _t.AsyncRetrying(
            sleep=self.clock.sleep,
            stop=stop,
            wait=self._wait,
            retry=_t.retry_if_exception(self._should_retry),
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            response: httpx.Response = await retrying(self._attempt, call)
        except _Final as final:
            raise final.error from final.error.__cause__
        except BoxError as error:
            if call.budget_refused:
                _note_budget(error)
            raise
        if budget is not None:
            budget.deposit()
        return response

    def _should_retry(self, error: BaseException) -> bool:
        if isinstance(error, (BoxTimeoutError, BoxConnectionError)):
            return True
        if isinstance(error, BoxAPIError) and error.status in RETRYABLE_STATUSES:
            return error.retry_after is None or error.retry_after <= self.retry.max_retry_after
        return False

    def _wait(self, rs: _t.RetryCallState) -> float:
        assert rs.outcome is not None  # noqa: S101 - tenacity sets it before asking for a wait
        error = rs.outcome.exception()
        if isinstance(error, BoxAPIError) and error.retry_after is not None:
            return error.retry_after
        return self.retry.backoff(rs.attempt_number, self._rng)

    # -- one attempt -----------------------------------------------------------------------

    def _remaining(self, call: _Call) -> float | None:
        return None if call.deadline is None else call.deadline - self.clock.monotonic()

    async def _await_cooldown(self, call: _Call) -> None:
        while (wait := self._cooldown_until - self.clock.monotonic()) > 0:
            remaining = self._remaining(call)
            if remaining is not None and wait > remaining:
                raise _Final(
                    BoxTimeoutError(
                        f"the client is cooling down for {wait:.1f} s after a 429, longer than the "
                        f"{remaining:.1f} s left before this call's deadline"
                    )
                )
            await self.clock.sleep(wait)

    async def _await_rate_limit(self, call: _Call) -> None:
        if self.limiter is None or not call.authenticated:
            return
        remaining = self._remaining(call)
        try:
            call.reserved_at = await self.limiter.acquire(max_wait=remaining)
        except TimeoutError as exc:
            raise _Final(
                BoxTimeoutError(
                    f"the client's rate limit would hold this request for {exc.args[0]:.1f} s, longer than "
                    f"the {remaining or 0:.1f} s left before this call's deadline"
                )
            ) from None

    async def _attempt(self, call: _Call) -> httpx.Response:
        await self._await_cooldown(call)
        await self._await_rate_limit(call)
        await self._await_cooldown(call)  # a 429 may have started a cool-down while this one waited
        while True:
            headers = dict(self._headers)
            token, fetched = "", False
            if call.authenticated:
                token, fetched = await self._token()
                headers["Authorization"] = f"Bearer {token}"
                if self.as_user is not None:
                    headers["As-User"] = self.as_user
            response = await self._send(call, headers)
            if response.status_code != 401 or not call.authenticated:
                break
            if not self.auth.can_refresh:
                raise self._error(response, token_endpoint=False, note=_DEVELOPER_401_NOTE)
            if fetched or call.refreshed_after_401:
                # A token that was just issued is refused: refreshing again would loop.
                raise self._error(response, token_endpoint=False, note=_FRESH_401_NOTE)
            call.refreshed_after_401 = True
            self.auth._invalidate(token, self.token_url)  # noqa: SLF001 - the auth protocol
            logger.info("POST %s answered 401; refreshing the token once", call.url.path)
        if response.is_success:
            return response
        error = self._error(response, token_endpoint=not call.authenticated)
        if call.observer is not None and error.status == 429:
            call.observer.rate_limited += 1
        raise error

    async def _token(self) -> tuple[str, bool]:
        try:
            return await self.auth._get_token(self._request_token, self.token_url, self.clock)  # noqa: SLF001
        except BoxError as error:
            # The token request was retried on its own; retrying the API call would multiply that.
            raise _Final(error) from error

    async def _send(self, call: _Call, headers: dict[str, str]) -> httpx.Response:
        timeout = self._timeout
        remaining = self._remaining(call)
        if remaining is not None:
            if remaining <= 0:
                raise _Final(BoxTimeoutError("the call's deadline passed before the request could be sent"))
            timeout = _cap_timeout(timeout, remaining)
        path = call.url.path
        hedge_after = self._hedge_after if call.authenticated and self.retry.hedge else None
        try:
            if hedge_after is None:
                response = await self._post(call, headers, timeout)
            else:
                response = await self._post_hedged(call, headers, timeout, hedge_after)
        except httpx.TimeoutException as exc:
            raise BoxTimeoutError(f"POST {path} timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise BoxConnectionError(f"POST {path} failed: {type(exc).__name__}: {exc}") from exc
        except httpx.HTTPError as exc:
            raise BoxError(f"POST {path} failed: {type(exc).__name__}: {exc}") from exc
        if self.limiter is not None and call.authenticated:
            if response.status_code == 429:
                self.limiter.on_rate_limited(call.reserved_at)
            elif response.status_code < 500:
                self.limiter.on_accepted()
        return response

    async def _post(self, call: _Call, headers: dict[str, str], timeout: httpx.Timeout) -> httpx.Response:
        """One request on the wire; raises httpx's exceptions."""
        if call.observer is not None:
            call.observer.requests += 1
        started = self.clock.monotonic()
        # Never follow a redirect: a caller's client may be set to, and a bearer token or a
        # termination must not be sent anywhere Box did not name in the first place.
        response = await self._http.post(
            call.url, json=call.json_body, data=call.form, headers=headers, timeout=timeout, follow_redirects=False
        )
        if call.authenticated and response.is_success:
            self._record_latency(self.clock.monotonic() - started)
        return response

    def _record_latency(self, seconds: float) -> None:
        self._latencies.append(seconds)
        if len(self._latencies) >= LATENCY_MIN_SAMPLES and len(self._latencies) % 10 == 0:
            ordered = sorted(self._latencies)
            p95 = ordered[int(0.95 * (len(ordered) - 1))]
            self._hedge_after = max(HEDGE_MIN_DELAY, 2 * p95)

    async def _post_hedged(
        self, call: _Call, headers: dict[str, str], timeout: httpx.Timeout, hedge_after: float
    ) -> httpx.Response:
        """Send; if no answer comes within ``hedge_after``, send a second copy; the first answer wins.

        Both termination endpoints are idempotent (Box: terminating twice is harmless), so a
        second copy costs one request and cuts the tail a stalled answer would add to a job.
        """
        tasks = {asyncio.ensure_future(self._post(call, headers, timeout))}
        try:
            done, _ = await asyncio.wait(tasks, timeout=hedge_after)
            if not done:
                self.hedges += 1
                logger.info(
                    "POST %s has not answered in %.2f s; sending a second copy (terminating twice is harmless)",
                    call.url.path,
                    hedge_after,
                )
                tasks.add(asyncio.ensure_future(self._hedge(call, headers, timeout)))
            pending, first_error = set(tasks), None
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    error = task.exception()
                    if error is None:
                        return task.result()
                    first_error = first_error or error
            assert first_error is not None  # noqa: S101 - every task failed, so one error exists
            raise first_error
        finally:
            for task in tasks:
                task.cancel()  # the slower copy: its connection is closed
            await asyncio.wait(tasks)

    async def _hedge(self, call: _Call, headers: dict[str, str], timeout: httpx.Timeout) -> httpx.Response:
        if self.limiter is not None:
            await self.limiter.acquire()  # a second copy is a request like any other
        return await self._post(call, headers, timeout)

    def _error(self, response: httpx.Response, *, token_endpoint: bool, note: str | None = None) -> BoxAPIError:
        retry_after = parse_retry_after(response.headers.get("retry-after"), now=self.clock.time())
        error = error_from_response(response, retry_after=retry_after, token_endpoint=token_endpoint)
        return with_note(error, note) if note else error

    # -- the token endpoint ----------------------------------------------------------------

    async def _request_token(self, url: httpx.URL, form: Mapping[str, str]) -> TokenGrant:
        response = await self._call(url, json_body=None, form=form, observer=None)
        try:
            body = json.loads(response.content)
            token = body["access_token"]
        except (ValueError, KeyError, TypeError):
            raise AuthenticationError(
                "the token endpoint answered without an access_token",
                status=response.status_code,
                headers=response.headers,
            ) from None
        if not isinstance(token, str) or not token:
            raise AuthenticationError(
                "the token endpoint answered with an empty access_token",
                status=response.status_code,
                headers=response.headers,
            )
        expires_in = body.get("expires_in")
        if isinstance(expires_in, bool) or not isinstance(expires_in, (int, float)):
            expires_in = DEFAULT_TOKEN_LIFETIME
        refresh = body.get("refresh_token")
        return TokenGrant(
            access_token=token,
            expires_in=float(expires_in),
            refresh_token=refresh if isinstance(refresh, str) and refresh else None,
        )


def _note_budget(error: BoxError) -> None:
    note = "not retried: the job's retry budget is spent"
    if isinstance(error, BoxAPIError):
        with_note(error, note)
    else:
        error.args = (f"{error} ({note})",)


def _describe(error: BaseException | None) -> str:
    if isinstance(error, BoxAPIError):
        return f"{error.status} {error.code or ''}".rstrip()
    return type(error).__name__
