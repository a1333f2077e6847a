"""`FakeBox`: an in-memory fake of Box's session-termination and token endpoints.

Faithful to what Box documents (see docs/box-api.md): 202 with Box's message, Box's error bodies and 400 messages, a
lower-case ``retry-after`` on 429, 401 for a missing, unknown or expired token, 405 for a method a
path does not have, and the OAuth error shape on the token endpoint. Use it in-process as an httpx
transport (`FakeBox.transport`, `FakeBox.client`) or as a real HTTP/1.1 server on 127.0.0.1
(``async with fake.serve() as base_url``).

This module holds its settings, its wiring and the dispatch of each request; what Box refuses is in
`._fake_rules`, the token endpoint in `._fake_tokens`, the rate limit and faults in `._fake_faults`.
"""

from __future__ import annotations

import collections
import contextlib
import json
from collections.abc import AsyncIterator, Iterable
from typing import Any, ClassVar, NamedTuple

import attrs

from .._auth import BoxAuth, DeveloperTokenAuth
from .._client import BoxClient
from .._clock import Clock, SystemClock
from .._http import httpx
from ._fake_faults import RateBucket, SeededFaults
from ._fake_rules import (
    ACCEPTED_MESSAGE,
    FIELDS,
    GROUPS_PATH,
    METHODS,
    NOT_JSON,
    OAUTH2_PATH,
    REQUEST_ID_HEADER,
    REQUIRED_FIELDS,
    USERS_PATH,
    access_denied,
    error,
    json_object,
    method_refusal,
    refusal,
    server_error,
    with_request_id,
)
from ._fake_tokens import TokenDesk, bearer_token
from ._fake_transport import HandlerTransport
from ._server import DropConnection, LoopbackServer, Reply, Request

__all__ = ["ControlEndpoint", "FakeBox", "RecordedRequest"]

STATS_PATH = "/_fakebox/stats"


def _share(_inst: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"FakeBox {attribute.name} must be a share between 0 and 1, got {value!r}")


def _optional_set(values: Iterable[object] | None) -> frozenset[str] | None:
    return None if values is None else frozenset(str(v) for v in values)


class ControlEndpoint(NamedTuple):
    """An endpoint of the fake itself, beside Box's: for measuring a fake that runs standalone."""

    method: str
    path: str
    description: str


CONTROL_ENDPOINTS = (
    ControlEndpoint("GET", STATS_PATH, "counts as JSON: answers by status, faults, token requests, ids terminated"),
)
#: The one method each path has, Box's and the fake's own; any other is answered 405.
_METHODS = {**METHODS, **{e.path: e.method for e in CONTROL_ENDPOINTS}}


@attrs.frozen
class RecordedRequest:
    """A request FakeBox received, the status it answered (0: dropped without answer), and its answer's request id."""

    method: str
    path: str
    body: Any
    status: int
    token: str | None = attrs.field(repr=False)
    request_id: str | None = None


@attrs.define(kw_only=True)
class FakeBox:
    """A fake Box for tests and demos.

    Args:
        users: Known user ids; any other id is answered 404 (the whole request, as Box does).
            ``None`` (default): every id is accepted.
        logins: Known user logins, likewise.
        groups: Known group ids, likewise.
        rate_limit: Requests a minute it allows (token bucket over both endpoints); over it, 429
            with ``retry-after``. ``None``: no limit.
        burst: The bucket's size; default one second's worth of ``rate_limit`` (at least 1).
        integer_retry_after: Send ``retry-after`` in whole seconds (at least 1), as Box does;
            ``False`` sends the exact fraction, for fast tests.
        latency: Seconds before each answer; ``jitter`` adds a uniform ± spread.
        error_rate: Share of API requests answered 500, 502 or 503.
        stall_rate: Share of API requests whose answer stalls for ``stall_seconds``.
        drop_rate: Share of API requests whose connection is dropped without an answer.
        max_batch: The most ids one request may carry; more is answered 400 "too many ids".
        forbidden: Answer every API call 403, as for a user without the rights.
        token_lifetime: Seconds a token lives; ``expires_in`` carries it in whole seconds, rounded
            down, as Box sends an integer.
        client_id, client_secret: The CCG credentials it accepts.
        developer_token: The developer token it accepts (never expires).
        seed: Seed of the random draws, for repeatable runs: the n-th API request past the rate
            limit meets the same fault (or none) every run, whatever the timing; jitter has its
            own stream.
        jwt_public_key: The PEM public key of a JWT app; enables the JWT grant, whose assertion
            must be RS256, for ``client_id``, with ``aud`` Box's token URL and ``exp`` at most 60 s
            ahead of the fake's time.
        clock_skew: Seconds the fake's wall clock is ahead of ``clock`` (to test clock skew); its
            token answers carry its time in a ``Date`` header, as Box's do.
        record_requests: Keep every request in `requests`; ``False`` keeps only the counts and
            what was terminated (for runs of millions of ids).
        clock: Time source for latency, rate limit and token expiry.

    Besides Box's endpoints it has control endpoints of its own, listed in `control_endpoints`, so
    a process that runs it standalone can be measured from outside:

    - ``GET /_fakebox/stats``: its counts as JSON (answers by status, faults, token requests,
      ids terminated), as `stats` returns them.

    What it refuses, as Box does: a termination body that is not ``Content-Type:
    application/json`` or not a JSON object (400 "Supported payload format is JSON"); a body
    without a key the endpoint requires (``user_ids`` and ``user_logins``, or ``group_ids``: 400
    "Bad Request" naming the key in ``context_info``, the shape Box gives a missing parameter); a list
    that is not an array of strings, or an id that is not ASCII digits (400 "User id format is
    string", "group id format is string"); nothing to terminate, or an empty login (400 "Users can
    not be NULL or EMPTY", "Groups can not be NULL or EMPTY"); a method the path does not have (405
    ``method_not_allowed`` with ``allow``); any other path (404). Token answers carry ``expires_in``
    as an integer, ``token_lifetime`` rounded down.
    """

    #: The fake's own endpoints beside Box's (method, path, description), for banners and docs.
    control_endpoints: ClassVar[tuple[ControlEndpoint, ...]] = CONTROL_ENDPOINTS

    users: frozenset[str] | None = attrs.field(default=None, converter=_optional_set)
    logins: frozenset[str] | None = attrs.field(default=None, converter=_optional_set)
    groups: frozenset[str] | None = attrs.field(default=None, converter=_optional_set)
    rate_limit: float | None = attrs.field(default=None, validator=attrs.validators.optional(attrs.validators.gt(0)))
    burst: float | None = attrs.field(default=None, validator=attrs.validators.optional(attrs.validators.ge(1)))
    integer_retry_after: bool = True
    latency: float = attrs.field(default=0.0, validator=attrs.validators.ge(0))
    jitter: float = attrs.field(default=0.0, validator=attrs.validators.ge(0))
    error_rate: float = attrs.field(default=0.0, validator=_share)
    stall_rate: float = attrs.field(default=0.0, validator=_share)
    drop_rate: float = attrs.field(default=0.0, validator=_share)
    stall_seconds: float = attrs.field(default=60.0, validator=attrs.validators.ge(0))
    max_batch: int | None = attrs.field(default=None, validator=attrs.validators.optional(attrs.validators.ge(1)))
    forbidden: bool = False
    token_lifetime: float = attrs.field(default=3600.0, validator=attrs.validators.gt(0))
    client_id: str = "fake-client-id"
    client_secret: str = attrs.field(default="fake-client-secret", repr=False)
    developer_token: str = attrs.field(default="fake-developer-token", repr=False)
    seed: int | None = None
    jwt_public_key: str | None = attrs.field(default=None, repr=False)
    clock_skew: float = 0.0
    record_requests: bool = True
    clock: Clock = attrs.field(factory=SystemClock, repr=False)

    requests: list[RecordedRequest] = attrs.field(factory=list, init=False, repr=False)
    terminated: dict[str, list[str]] = attrs.field(factory=lambda: {f: [] for f in FIELDS}, init=False, repr=False)
    status_counts: collections.Counter[int] = attrs.field(factory=collections.Counter, init=False)
    faults: collections.Counter[str] = attrs.field(factory=collections.Counter, init=False)
    token_requests: int = attrs.field(default=0, init=False)
    spent_refresh_tokens: int = attrs.field(default=0, init=False)
    # The parts that keep state of their own; each reads the settings above at each request.
    _token_desk: TokenDesk = attrs.field(default=attrs.Factory(TokenDesk, takes_self=True), init=False, repr=False)
    _bucket: RateBucket = attrs.field(factory=RateBucket, init=False, repr=False)
    _draws: SeededFaults = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self._draws = SeededFaults(self.seed)

    # -- how tests and users wire it -------------------------------------------------------

    def transport(self) -> httpx.AsyncBaseTransport:
        """An httpx transport that answers in-process, with no sockets."""
        return HandlerTransport(self.handle)

    def client(self, auth: BoxAuth | None = None, **kwargs: Any) -> BoxClient:
        """A `BoxClient` wired to this fake in-process (by default with its developer token)."""
        kwargs.setdefault("base_url", "https://api.box.com")
        return BoxClient(auth or DeveloperTokenAuth(self.developer_token), transport=self.transport(), **kwargs)

    @contextlib.asynccontextmanager
    async def serve(self, *, port: int = 0) -> AsyncIterator[str]:
        """Serve on ``127.0.0.1`` (a free port by default) while the block runs; yields the base URL."""
        async with LoopbackServer(self.handle, port=port) as server:
            yield server.url

    def issue_refresh_token(self) -> str:
        """A refresh token the fake accepts once, as a user's OAuth 2.0 login would give."""
        return self._token_desk.issue_refresh_token()

    # -- what tests read -------------------------------------------------------------------

    @property
    def terminated_count(self) -> int:
        return sum(len(values) for values in self.terminated.values())

    def stats(self) -> dict[str, Any]:
        """Counts as JSON-ready data: answers by status, faults, token requests, ids terminated."""
        return {
            "status_counts": {str(k): v for k, v in sorted(self.status_counts.items())},
            "faults": dict(self.faults),
            "token_requests": self.token_requests,
            "terminated": {f: len(v) for f, v in self.terminated.items()},
            "distinct_terminated": {f: len(set(v)) for f, v in self.terminated.items()},
        }

    def api_requests(self) -> list[RecordedRequest]:
        """The requests made to the two termination endpoints."""
        return [r for r in self.requests if r.path in (USERS_PATH, GROUPS_PATH)]

    # -- the fake ----------------------------------------------------------------------------

    async def handle(self, request: Request) -> Reply:
        """Answer one request (the loopback server's handler)."""
        path = request.path.split("?", 1)[0]
        refused = method_refusal(request.method, _METHODS.get(path))
        if refused is not None:
            return self._record(request, None, refused, None)
        if path == STATS_PATH:
            return Reply(200, json.dumps(self.stats()).encode(), {"content-type": "application/json"})
        if path == OAUTH2_PATH:
            return self._record(request, None, self._token_desk.answer(request), None)
        token = bearer_token(request)
        refused = self._token_desk.check(token)
        if refused is None and self.forbidden:
            refused = access_denied()
        if refused is None:
            refused = self._bucket.take(
                rate_limit=self.rate_limit,
                burst=self.burst,
                integer_retry_after=self.integer_retry_after,
                clock=self.clock,
            )
        if refused is not None:
            return self._record(request, None, refused, token)
        faulted = await self._meet_faults(request, token)
        if faulted is not None:
            return faulted
        return self._terminate(request, path, token)

    async def _meet_faults(self, request: Request, token: str | None) -> Reply | None:
        """Wait the latency, then meet this request's fault: a 5xx answer, a stall or a dropped connection."""
        # Faults are drawn in arrival order, before the wait, so a seed gives the same faults
        # whatever order concurrent requests finish their latency in.
        draw = self._draws.draw()
        await self._draws.wait_latency(latency=self.latency, jitter=self.jitter, clock=self.clock)
        fault = draw.fault(drop_rate=self.drop_rate, stall_rate=self.stall_rate, error_rate=self.error_rate)
        if fault is not None:
            self.faults[fault] += 1
        if fault == "drop":
            self._record(request, None, Reply(0), token)
            raise DropConnection
        if fault == "stall":
            await self.clock.sleep(self.stall_seconds)
        elif fault == "error":
            return self._record(request, None, server_error(draw.status), token)
        return None

    def _record(self, request: Request, body: Any, reply: Reply, token: str | None) -> Reply:
        reply = with_request_id(reply) if reply.status else reply  # every answer is named, as Box names them
        if self.record_requests:
            if body is None:
                body = _sent_body(request)
            request_id = reply.headers.get(REQUEST_ID_HEADER)
            self.requests.append(RecordedRequest(request.method, request.path, body, reply.status, token, request_id))
        self.status_counts[reply.status] += 1
        return reply

    def _terminate(self, request: Request, path: str, token: str | None) -> Reply:
        body = json_object(request)
        if body is None:
            return self._record(request, None, error(400, "bad_request", NOT_JSON), token)
        known = {"user_ids": self.users, "user_logins": self.logins, "group_ids": self.groups}
        reply = refusal(path, body, max_batch=self.max_batch, known=known)
        if reply is None:
            for field in REQUIRED_FIELDS[path]:
                self.terminated[field].extend(body[field])
            reply = Reply(202, json.dumps({"message": ACCEPTED_MESSAGE}).encode(), {"content-type": "application/json"})
        return self._record(request, body, reply, token)


def _sent_body(request: Request) -> Any:
    """What a request sent, as `FakeBox.requests` keeps it: its JSON, else its first 200 characters."""
    if request.path.startswith(OAUTH2_PATH):
        return None  # never keep client secrets
    try:
        return json.loads(request.body) if request.body else None
    except ValueError:
        return request.body.decode("utf-8", "replace")[:200]
