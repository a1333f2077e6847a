"""`FakeBox`: an in-memory fake of Box's session-termination and token endpoints.

Faithful to what Box documents (see docs/box-api.md): 202 with Box's message, Box's error
bodies, a lower-case ``retry-after`` on 429, 401 for a missing, unknown or expired token, and the
OAuth error shape on the token endpoint. Use it in-process as an httpx transport
(`FakeBox.transport`, `FakeBox.client`) or as a real HTTP/1.1 server on 127.0.0.1
(``async with fake.serve() as base_url``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import email.utils
import json
import math
import random
import secrets
from collections.abc import AsyncIterator, Iterable
from typing import Any
from urllib.parse import parse_qs

import attrs
import httpx

from .._auth import BoxAuth, DeveloperTokenAuth
from .._client import DEFAULT_TIMEOUT, BoxClient
from .._clock import Clock, SystemClock
from ._server import DropConnection, LoopbackServer, Reply, Request

__all__ = ["FakeBox", "RecordedRequest"]

ACCEPTED_MESSAGE = "Request is successful, please check the admin events for the status of the job"
HELP_URL = "https://developer.box.com/guides/api-calls/permissions-and-errors/common-errors/"
USERS_PATH = "/2.0/users/terminate_sessions"
GROUPS_PATH = "/2.0/groups/terminate_sessions"
OAUTH2_PATH = "/oauth2/token"
STATS_PATH = "/_fakebox/stats"
FIELDS = ("user_ids", "user_logins", "group_ids")
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def _share(_inst: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"FakeBox {attribute.name} must be a share between 0 and 1, got {value!r}")


def _optional_set(values: Iterable[object] | None) -> frozenset[str] | None:
    return None if values is None else frozenset(str(v) for v in values)


@attrs.frozen
class RecordedRequest:
    """A request FakeBox received, and the status it answered (0: dropped without answer)."""

    method: str
    path: str
    body: Any
    status: int
    token: str | None = attrs.field(repr=False)


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
        token_lifetime: Seconds a CCG token lives (``expires_in``).
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

    Besides Box's endpoints it answers ``GET /_fakebox/stats`` with its counts as JSON, so a
    process that runs it standalone can be measured from outside.
    """

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
    _tokens: dict[str, float] = attrs.field(factory=dict, init=False, repr=False)
    _refresh_tokens: set[str] = attrs.field(factory=set, init=False, repr=False)
    spent_refresh_tokens: int = attrs.field(default=0, init=False)
    _bucket: float = attrs.field(default=0.0, init=False, repr=False)
    _bucket_at: float | None = attrs.field(default=None, init=False, repr=False)
    _fault_rng: random.Random = attrs.field(init=False, repr=False)
    _latency_rng: random.Random = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        # Two streams, so latency draws never shift which request meets which fault.
        self._fault_rng = random.Random(self.seed)
        self._latency_rng = random.Random(None if self.seed is None else f"{self.seed}:latency")

    # -- how tests and users wire it -------------------------------------------------------

    def transport(self) -> httpx.AsyncBaseTransport:
        """An httpx transport that answers in-process, with no sockets."""
        return _FakeTransport(self)

    def client(self, auth: BoxAuth | None = None, **kwargs: Any) -> BoxClient:
        """A `BoxClient` wired to this fake in-process (by default with its developer token)."""
        kwargs.setdefault("base_url", "https://api.box.com")
        kwargs.setdefault("timeout", DEFAULT_TIMEOUT)
        http_client = httpx.AsyncClient(transport=self.transport())
        client = BoxClient(auth or DeveloperTokenAuth(self.developer_token), http_client=http_client, **kwargs)
        client._owns_http = True  # noqa: SLF001 - the fake made the http client, so the BoxClient closes it
        return client

    @contextlib.asynccontextmanager
    async def serve(self, *, port: int = 0) -> AsyncIterator[str]:
        """Serve on ``127.0.0.1`` (a free port by default) while the block runs; yields the base URL."""
        async with LoopbackServer(self.handle, port=port) as server:
            yield server.url

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

    async def handle(self, request: Request) -> Reply:  # noqa: PLR0911 - one return per kind of answer
        """Answer one request (the loopback server's handler)."""
        path = request.path.split("?", 1)[0]
        if request.method == "GET" and path == STATS_PATH:
            return Reply(200, json.dumps(self.stats()).encode(), {"content-type": "application/json"})
        if request.method != "POST" or path not in (USERS_PATH, GROUPS_PATH, OAUTH2_PATH):
            return self._record(request, None, _error(404, "not_found", "Not Found"), None)
        if path == OAUTH2_PATH:
            return self._record(request, None, self._token_endpoint(request), None)
        token = _bearer(request)
        denied = self._check_token(token)
        if denied is not None:
            return self._record(request, None, denied, token)
        limited = self._take_rate_token()
        if limited is not None:
            return self._record(request, None, limited, token)
        # Faults are drawn in arrival order, before the wait, so a seed gives the same faults
        # whatever order concurrent requests finish their latency in.
        draw = self._fault_rng.random()
        error_status = self._fault_rng.choice((500, 502, 503))
        await self._wait_latency()
        if draw < self.drop_rate:
            self.faults["drop"] += 1
            self._record(request, None, Reply(0), token)
            raise DropConnection
        if draw < self.drop_rate + self.stall_rate:
            self.faults["stall"] += 1
            await self.clock.sleep(self.stall_seconds)
        elif draw < self.drop_rate + self.stall_rate + self.error_rate:
            self.faults["error"] += 1
            codes = {500: "internal_server_error", 502: "bad_gateway", 503: "unavailable"}
            return self._record(
                request, None, _error(error_status, codes[error_status], "Internal Server Error"), token
            )
        return self._terminate(request, path, token)

    def _record(self, request: Request, body: Any, reply: Reply, token: str | None) -> Reply:
        if body is None and self.record_requests:
            try:
                body = json.loads(request.body) if request.body else None
            except ValueError:
                body = request.body.decode("utf-8", "replace")[:200]
            if request.path.startswith(OAUTH2_PATH):
                body = None  # never keep client secrets
        if self.record_requests:
            self.requests.append(RecordedRequest(request.method, request.path, body, reply.status, token))
        self.status_counts[reply.status] += 1
        return reply

    def issue_refresh_token(self) -> str:
        """A refresh token the fake accepts once, as a user's OAuth 2.0 login would give."""
        token = f"fake-refresh-{secrets.token_hex(8)}"
        self._refresh_tokens.add(token)
        return token

    def _token_endpoint(self, request: Request) -> Reply:
        self.token_requests += 1
        form = {k: v[0] for k, v in parse_qs(request.body.decode("utf-8", "replace")).items()}
        grant = form.get("grant_type")
        if grant not in ("client_credentials", "refresh_token", JWT_GRANT):
            return self._oauth_error("unsupported_grant_type", f"Grant type {grant!r} is not supported")
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return self._oauth_error("invalid_client", "The client credentials are invalid")
        refresh = None
        if grant == "client_credentials":
            if form.get("box_subject_type") not in ("enterprise", "user") or not form.get("box_subject_id"):
                return self._oauth_error("invalid_request", "box_subject_type and box_subject_id are required")
        elif grant == "refresh_token":
            if form.get("refresh_token") not in self._refresh_tokens:
                return self._oauth_error("invalid_grant", "Invalid refresh token")
            self._refresh_tokens.discard(form["refresh_token"])  # each works once
            self.spent_refresh_tokens += 1
            refresh = self.issue_refresh_token()
        else:
            refused = self._check_assertion(form.get("assertion", ""))
            if refused is not None:
                return refused
        token = f"fake-access-{secrets.token_hex(8)}"
        self._tokens[token] = self.clock.monotonic() + self.token_lifetime
        body: dict[str, Any] = {"access_token": token, "expires_in": self.token_lifetime, "token_type": "bearer"}
        body["restricted_to"] = []
        if refresh is not None:
            body["refresh_token"] = refresh
        return Reply(200, json.dumps(body).encode(), self._token_headers())

    def _now(self) -> float:
        return self.clock.time() + self.clock_skew

    def _token_headers(self) -> dict[str, str]:
        return {"content-type": "application/json", "date": email.utils.formatdate(self._now(), usegmt=True)}

    def _oauth_error(self, error: str, description: str) -> Reply:
        body = json.dumps({"error": error, "error_description": description}).encode()
        return Reply(400, body, self._token_headers())

    def _check_assertion(self, assertion: str) -> Reply | None:
        if self.jwt_public_key is None:
            return self._oauth_error("unauthorized_client", "This app is not a JWT app")
        import jwt  # noqa: PLC0415 - only JWT tests need it

        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(
                assertion,
                self.jwt_public_key,
                algorithms=["RS256"],
                audience="https://api.box.com/oauth2/token",
                options={"verify_exp": False, "require": ["iss", "sub", "box_sub_type", "aud", "jti", "exp"]},
            )
        except jwt.PyJWTError as exc:
            return self._oauth_error("invalid_grant", f"Invalid assertion: {type(exc).__name__}")
        if not header.get("kid") or claims["iss"] != self.client_id:
            return self._oauth_error("invalid_grant", "Invalid assertion: kid or iss")
        if claims["box_sub_type"] not in ("enterprise", "user"):
            return self._oauth_error("invalid_grant", "Invalid assertion: box_sub_type")
        now = self._now()
        if not now < claims["exp"] <= now + 60:
            return self._oauth_error("invalid_grant", "Please check the 'exp' claim.")
        return None

    def _check_token(self, token: str | None) -> Reply | None:
        if token is None:
            return _error(401, "unauthorized", "Unauthorized", {"www-authenticate": 'Bearer realm="Service"'})
        if token != self.developer_token:
            expires = self._tokens.get(token)
            if expires is None or self.clock.monotonic() >= expires:
                return _error(401, "invalid_token", "The access token provided is invalid.")
        if self.forbidden:
            return _error(403, "access_denied_insufficient_permissions", "Access denied - insufficient permission")
        return None

    def _take_rate_token(self) -> Reply | None:
        if self.rate_limit is None:
            return None
        rate = self.rate_limit / 60.0
        capacity = self.burst if self.burst is not None else max(1.0, rate)
        now = self.clock.monotonic()
        if self._bucket_at is None:
            self._bucket = capacity
        else:
            self._bucket = min(capacity, self._bucket + (now - self._bucket_at) * rate)
        self._bucket_at = now
        if self._bucket >= 1.0:
            self._bucket -= 1.0
            return None
        wait = (1.0 - self._bucket) / rate
        retry_after = str(max(1, math.ceil(wait))) if self.integer_retry_after else f"{wait:.3f}"
        return _error(
            429,
            "rate_limit_exceeded",
            "Request rate limit exceeded, please try again later",
            {"retry-after": retry_after},
        )

    async def _wait_latency(self) -> None:
        delay = self.latency + (self._latency_rng.uniform(-self.jitter, self.jitter) if self.jitter else 0.0)
        if delay > 0:
            await self.clock.sleep(delay)

    def _terminate(self, request: Request, path: str, token: str | None) -> Reply:
        try:
            body = json.loads(request.body)
        except ValueError:
            return self._record(request, None, _error(400, "bad_request", "Supported payload format is JSON"), token)
        if not isinstance(body, dict):
            return self._record(request, None, _error(400, "bad_request", "Supported payload format is JSON"), token)
        fields = ("group_ids",) if path == GROUPS_PATH else ("user_ids", "user_logins")
        values = {f: body.get(f) or [] for f in fields}
        reply = self._validate(path, values)
        if reply is None:
            for field in fields:
                self.terminated[field].extend(values[field])
            reply = Reply(202, json.dumps({"message": ACCEPTED_MESSAGE}).encode(), {"content-type": "application/json"})
        return self._record(request, body, reply, token)

    def _validate(self, path: str, values: dict[str, Any]) -> Reply | None:
        noun = "Groups" if path == GROUPS_PATH else "Users"
        if not any(values.values()):
            return _error(400, "bad_request", f"{noun} can not be NULL or EMPTY")
        for field, items in values.items():
            if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
                return _error(400, "bad_request", f"{'group' if field == 'group_ids' else 'User'} id format is string")
            if field != "user_logins" and not all(v.isdigit() for v in items):
                return _error(400, "bad_request", f"{'group' if field == 'group_ids' else 'User'} id format is string")
        count = sum(len(v) for v in values.values())
        if self.max_batch is not None and count > self.max_batch:
            return _error(400, "bad_request", f"Too many ids in one request: {count}, at most {self.max_batch}")
        known = {"user_ids": self.users, "user_logins": self.logins, "group_ids": self.groups}
        for field, items in values.items():
            allowed = known[field]
            if allowed is not None and any(v not in allowed for v in items):
                noun = "Group" if field == "group_ids" else "User"
                return _error(404, "not_found", f"{noun} not found")
        return None


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token if scheme.lower() == "bearer" and token else None


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Reply:
    body = {
        "type": "error",
        "status": status,
        "code": code,
        "help_url": HELP_URL,
        "message": message,
        "request_id": secrets.token_hex(6),
        "context_info": {},
    }
    return Reply(status, json.dumps(body).encode(), {"content-type": "application/json", **(headers or {})})


class _FakeTransport(httpx.AsyncBaseTransport):
    """Answers httpx requests in-process through `FakeBox.handle`."""

    def __init__(self, fake: FakeBox) -> None:
        self._fake = fake

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        incoming = Request(
            method=request.method,
            path=request.url.raw_path.decode(),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
        )
        read_timeout = request.extensions.get("timeout", {}).get("read")
        try:
            if read_timeout is None:
                reply = await self._fake.handle(incoming)
            else:
                reply = await asyncio.wait_for(self._fake.handle(incoming), read_timeout)
        except DropConnection:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            ) from None
        except asyncio.TimeoutError:
            raise httpx.ReadTimeout("timed out waiting for the fake's answer", request=request) from None
        return httpx.Response(reply.status, headers=dict(reply.headers), content=reply.body, request=request)
