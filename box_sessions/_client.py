"""`BoxClient`: the entry point, owning the transport and the managers."""

from __future__ import annotations

import enum
import random
from types import TracebackType
from typing import TYPE_CHECKING

from ._auth import BoxAuth
from ._clock import Clock, SystemClock
from ._http import HTTP_STACK, httpx, stack_mismatch
from ._pacing import FallbackPacingState, InMemoryPacingState, Pacer, RateLimit
from ._sending import RetryPolicy, Sender
from ._shared import PacingState, Shared, ShareHealth
from ._telemetry import Telemetry
from ._termination import SessionTerminationManager
from ._validation import check_secure_url, normalise_id
from ._version import __version__

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_TIMEOUT", "BoxClient"]

DEFAULT_BASE_URL = "https://api.box.com"
#: Seconds for each of connect, read, write and pool of one attempt.
DEFAULT_TIMEOUT = 30.0
#: Box's documented limit: about 1,000 calls a minute per user, adaptive.
DEFAULT_RATE_LIMIT = RateLimit()


class _Unset(enum.Enum):
    UNSET = enum.auto()


_UNSET = _Unset.UNSET


class _State(enum.Enum):
    UNOPENED = "unopened"
    OPEN = "open"
    CLOSED = "closed"


def _build_timeout(timeout: float | httpx.Timeout | None) -> httpx.Timeout:
    if isinstance(timeout, httpx.Timeout):
        return timeout
    if timeout is None:
        return httpx.Timeout(None)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds or an httpx.Timeout, got {type(timeout).__name__}")
    if not timeout > 0:
        raise ValueError(f"timeout must be positive, got {timeout!r}")
    return httpx.Timeout(float(timeout))


def _pacing_state(
    shared: Shared | None, auth: BoxAuth, token_url: httpx.URL, as_user: str | None, health: ShareHealth
) -> PacingState | None:
    """The pacing state ``shared`` keeps for the client's Box identity, behind a fallback; ``None`` to pace alone.

    Box's limit belongs to the user the calls count against: the auth's identity (see
    `BoxAuth.identity`) and the ``As-User`` it acts as. A share without a pacing facet, or an auth
    whose identity is not known, leaves pacing to each process.
    """
    pacing = None if shared is None else shared.pacing
    identity = auth.identity(token_url)
    if pacing is None or identity is None:
        return None
    return FallbackPacingState(pacing.state(f"{identity.key} as-user:{as_user or ''}"), health.clock, health)


class BoxClient:
    """An async client for Box's session-termination API.

    Use it as an async context manager, or call `aclose` when done. Once closed it cannot be
    reopened.

    Args:
        auth: The credentials: `DeveloperTokenAuth`, `CCGAuth`, `OAuth2Auth` or `JWTAuth`.
        base_url: The API host; calls go to ``{base_url}/2.0/...`` and CCG tokens come from
            ``{base_url}/oauth2/token``. Must be https, except for a loopback host (tests).
        timeout: Per-attempt network timeout in seconds, or an `httpx.Timeout`. Default 30 s, or
            the given ``http_client``'s own timeout. ``None``: no per-attempt timeout (the retry
            policy's ``total_timeout`` still applies).
        retry: How calls are retried; see `RetryPolicy` for the defaults.
        http_client: An `httpx.AsyncClient` to send through (e.g. a FastAPI app's pooled one).
            Closing it stays the caller's job.
        transport: An `httpx.AsyncBaseTransport` for the client's own `httpx.AsyncClient` to send
            through, as ``httpx.AsyncClient(transport=...)`` takes it: a test double
            (`httpx.MockTransport`, `box_sessions.testing.FakeBox.transport`) or a wrapper that
            traces every attempt. It is closed with the client. Not together with ``http_client``.
        rate_limit: Client-side pacing shared by every request of this client; default Box's
            documented 1,000 calls a minute, adaptive on 429s. ``None`` turns it off.
        as_user: Act as this user: every API call carries Box's ``As-User`` header (the token's
            user must be an admin, or an app allowed to).
        clock: Time source for waits, deadlines and token expiry; tests pass a fake one.
        shared: State shared with the other processes of the same Box app, e.g.
            ``box_sessions.redis.RedisShare``: CCG and JWT tokens are had once per expiry for all
            of them, and, with a share that has a ``pacing`` facet, the rate limit and the 429
            cool-down of a CCG or JWT identity (and ``as_user``) are one for all of them. (An
            `OAuth2Auth` shares through its ``token_store``.) Closing it stays the caller's job.
        tracer_provider, meter_provider: Where the client's OpenTelemetry spans and measurements
            go (tracer and meter ``box_sessions``; needs ``opentelemetry-api``, the ``[otel]``
            extra); the global providers by default. Without ``opentelemetry-api`` nothing is
            recorded, whatever is given.

    Raises:
        TypeError, ValueError: an argument is of the wrong type or value (plain http to a
            non-loopback host among them), or both ``transport`` and ``http_client`` are given.
    """

    def __init__(
        self,
        auth: BoxAuth,
        *,
        base_url: str | httpx.URL = DEFAULT_BASE_URL,
        timeout: float | httpx.Timeout | _Unset | None = _UNSET,
        retry: RetryPolicy | None = None,
        http_client: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        rate_limit: RateLimit | None = DEFAULT_RATE_LIMIT,
        as_user: str | int | None = None,
        clock: Clock | None = None,
        shared: Shared | None = None,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        if not isinstance(auth, BoxAuth):
            raise TypeError(
                f"auth must be a DeveloperTokenAuth, CCGAuth, OAuth2Auth or JWTAuth, got {type(auth).__name__}"
            )
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise TypeError(f"retry must be a RetryPolicy, got {type(retry).__name__}")
        if rate_limit is not None and not isinstance(rate_limit, RateLimit):
            raise TypeError(f"rate_limit must be a RateLimit or None, got {type(rate_limit).__name__}")
        if http_client is not None and not isinstance(http_client, httpx.AsyncClient):
            raise stack_mismatch("http_client", http_client, "AsyncClient") or TypeError(
                f"http_client must be an {HTTP_STACK}.AsyncClient, got {type(http_client).__name__}"
            )
        if transport is not None and not isinstance(transport, httpx.AsyncBaseTransport):
            raise stack_mismatch("transport", transport, "AsyncBaseTransport") or TypeError(
                f"transport must be an {HTTP_STACK}.AsyncBaseTransport, got {type(transport).__name__}"
            )
        if shared is not None and not isinstance(shared, Shared):
            raise TypeError(
                f"shared must be a box_sessions.Shared (with tokens and pacing), such as a RedisShare, "
                f"got {type(shared).__name__}"
            )
        if transport is not None and http_client is not None:
            raise TypeError(
                "give transport or http_client, not both: a transport is for the client's own httpx.AsyncClient"
            )
        url = check_secure_url(base_url, "base_url")
        url = url.copy_with(path=url.path.rstrip("/") or "/")
        # A gateway in front of Box (``https://gw.example.com/box``) serves the token endpoint too.
        token_url = url.copy_with(path=url.path.rstrip("/") + "/oauth2/token")
        if timeout is _UNSET:
            timeout = http_client.timeout if http_client is not None else DEFAULT_TIMEOUT
        attempt_timeout = _build_timeout(timeout)
        owns_http = http_client is None
        if http_client is None:
            http_client = httpx.AsyncClient(
                transport=transport,
                timeout=attempt_timeout,
                follow_redirects=False,
                limits=httpx.Limits(max_connections=100, max_keepalive_connections=100),
            )
        self._http = http_client
        self._owns_http = owns_http
        self._parent: BoxClient | None = None
        self._state = _State.UNOPENED
        clock = clock or SystemClock()
        as_user_id = None if as_user is None else normalise_id(as_user, "as_user")
        health = ShareHealth(clock)  # one view of the share for its tokens and its pacing
        state = _pacing_state(shared, auth, token_url, as_user_id, health) if rate_limit is not None else None
        self._sender = Sender(
            auth=auth,
            base_url=url,
            token_url=token_url,
            http_client=http_client,
            timeout=attempt_timeout,
            retry=retry or RetryPolicy(),
            clock=clock,
            headers={"User-Agent": f"box-sessions/{__version__}", "Accept": "application/json"},
            pacer=Pacer(state or InMemoryPacingState(clock), rate_limit, clock),
            as_user=as_user_id,
            rng=random.Random(),
            shared=shared,
            health=health,
            telemetry=Telemetry(tracer_provider=tracer_provider, meter_provider=meter_provider),
        )
        self._session_termination = SessionTerminationManager(self._sender)

    @property
    def session_termination(self) -> SessionTerminationManager:
        """Terminate users' and groups' sessions."""
        if self.is_closed:
            raise RuntimeError("this BoxClient is closed; create a new one")
        return self._session_termination

    @property
    def is_closed(self) -> bool:
        """Whether `aclose` has been called (for a client of `with_options`: on it or on its parent)."""
        return self._state is _State.CLOSED or (self._parent is not None and self._parent.is_closed)

    def with_options(
        self,
        *,
        timeout: float | httpx.Timeout | _Unset | None = _UNSET,
        retry: RetryPolicy | None = None,
        as_user: str | int | _Unset | None = _UNSET,
    ) -> BoxClient:
        """A client that differs from this one only in the options given, and shares everything else.

        It shares this client's connections, token cache, pacing (rate limit and 429 cool-down),
        hedging and share: a FastAPI handler that must answer in 10 s and a nightly job that may
        take 300 s per call use one pool, one token and one rate limit. Cheap enough to make per
        request. Closing it leaves this client open; closing this client closes it too.

        Args:
            timeout: Per-attempt timeout, as `BoxClient` takes it; this client's by default.
            retry: The retry policy (its ``total_timeout`` is the call's deadline); this
                client's by default.
            as_user: Act as this user (Box's ``As-User`` header), ``None`` for nobody; this
                client's by default. The rate limit stays this client's.

        Raises:
            RuntimeError: this client is closed.
            TypeError, ValueError: an option is of the wrong type or value.
        """
        if self.is_closed:
            raise RuntimeError("this BoxClient is closed; create a new one")
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise TypeError(f"retry must be a RetryPolicy, got {type(retry).__name__}")
        sender = self._sender
        if as_user is not _UNSET:
            as_user = None if as_user is None else normalise_id(as_user, "as_user")
        child = object.__new__(BoxClient)
        child._http, child._owns_http, child._parent = self._http, False, self
        child._state = _State.OPEN
        child._sender = sender.derive(
            timeout=sender.timeout if timeout is _UNSET else _build_timeout(timeout),
            retry=retry or sender.retry,
            as_user=sender.as_user if as_user is _UNSET else as_user,
        )
        child._session_termination = SessionTerminationManager(child._sender)
        return child

    async def __aenter__(self) -> BoxClient:
        if self._state is _State.CLOSED:
            raise RuntimeError("a closed BoxClient cannot be reopened; create a new one")
        if self._state is _State.OPEN:
            raise RuntimeError("this BoxClient is already open")
        self._state = _State.OPEN
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the client and, if this client created it, its connection pool.

        Calls still running stop: a call that has not been sent raises `ClientClosedError`, and a
        bulk job under way stops sending and returns its report with ``stopped_by`` set to it. A
        token request already sent is let end first (at most 30 s, see `BoxAuth.drain`).
        """
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        self._sender.close()
        if self._parent is not None:
            return  # the parent's token requests, connections and share stay the parent's
        try:
            # A token request already sent (its caller may have gone) still ends, and its result
            # is kept (an OAuth 2.0 refresh saved), before the connections it uses close.
            await self._sender.auth.drain()
        finally:
            if self._owns_http:
                await self._http.aclose()

    def __repr__(self) -> str:
        url = str(self._sender.base_url)
        return f"BoxClient(base_url={url!r}, auth={self._sender.auth!r}, state={self._state.value})"
