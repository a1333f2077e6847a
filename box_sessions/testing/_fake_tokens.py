"""The token endpoint of `FakeBox`: issuing access and refresh tokens, and checking them.

Client credentials (CCG), OAuth 2.0 refresh with single-use refresh tokens and the JWT grant, each
answered as Box answers (``expires_in`` an integer, the fake's time in a ``Date`` header, the OAuth
error shape on refusal); access tokens expire after ``token_lifetime`` on the fake's clock.
"""

from __future__ import annotations

import email.utils
import json
import math
import secrets
from typing import Any, Protocol
from urllib.parse import parse_qs

import attrs

from .._clock import Clock
from ._fake_rules import error
from ._server import Reply, Request

__all__ = ["TokenDesk", "TokenSettings", "bearer_token"]

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GRANTS = ("client_credentials", "refresh_token", JWT_GRANT)


class TokenSettings(Protocol):
    """The fake the desk serves: settings it reads at each request and the two counters it adds to.

    Read at each request, so a setting changed on a live fake applies at once; the counters stay on
    the fake, where tests read them.
    """

    token_requests: int
    spent_refresh_tokens: int

    @property
    def client_id(self) -> str: ...
    @property
    def client_secret(self) -> str: ...
    @property
    def developer_token(self) -> str: ...
    @property
    def token_lifetime(self) -> float: ...
    @property
    def jwt_public_key(self) -> str | None: ...
    @property
    def clock_skew(self) -> float: ...
    @property
    def clock(self) -> Clock: ...


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header, or ``None``."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token if scheme.lower() == "bearer" and token else None


@attrs.define
class TokenDesk:
    """Issues the fake's tokens at its token endpoint and checks those sent to the API."""

    _fake: TokenSettings = attrs.field(eq=False, repr=False)
    #: Access tokens issued, each with the monotonic time it expires at.
    _access: dict[str, float] = attrs.field(factory=dict, init=False, repr=False)
    #: Refresh tokens not yet spent: each works once.
    _refresh: set[str] = attrs.field(factory=set, init=False, repr=False)

    def issue_refresh_token(self) -> str:
        """A refresh token the fake accepts once."""
        token = f"fake-refresh-{secrets.token_hex(8)}"
        self._refresh.add(token)
        return token

    def answer(self, request: Request) -> Reply:
        """Answer one request to the token endpoint."""
        fake = self._fake
        fake.token_requests += 1
        form = {k: v[0] for k, v in parse_qs(request.body.decode("utf-8", "replace")).items()}
        grant = form.get("grant_type")
        if grant not in GRANTS:
            return self._oauth_error("unsupported_grant_type", f"Grant type {grant!r} is not supported")
        if form.get("client_id") != fake.client_id or form.get("client_secret") != fake.client_secret:
            return self._oauth_error("invalid_client", "The client credentials are invalid")
        refresh = None
        if grant == "client_credentials":
            if form.get("box_subject_type") not in ("enterprise", "user") or not form.get("box_subject_id"):
                return self._oauth_error("invalid_request", "box_subject_type and box_subject_id are required")
        elif grant == "refresh_token":
            if form.get("refresh_token") not in self._refresh:
                return self._oauth_error("invalid_grant", "Invalid refresh token")
            self._refresh.discard(form["refresh_token"])  # each works once
            fake.spent_refresh_tokens += 1
            refresh = self.issue_refresh_token()
        else:
            refused = self._check_assertion(form.get("assertion", ""))
            if refused is not None:
                return refused
        token = f"fake-access-{secrets.token_hex(8)}"
        self._access[token] = fake.clock.monotonic() + fake.token_lifetime
        expires_in = math.floor(fake.token_lifetime)  # Box's expires_in is an integer
        body: dict[str, Any] = {"access_token": token, "expires_in": expires_in, "token_type": "bearer"}
        body["restricted_to"] = []
        if refresh is not None:
            body["refresh_token"] = refresh
        return Reply(200, json.dumps(body).encode(), self._headers())

    def check(self, token: str | None) -> Reply | None:
        """Box's 401 for a missing, unknown or expired access token; ``None`` for a good one."""
        if token is None:
            return error(401, "unauthorized", "Unauthorized", {"www-authenticate": 'Bearer realm="Service"'})
        if token != self._fake.developer_token:
            expires = self._access.get(token)
            if expires is None or self._fake.clock.monotonic() >= expires:
                return error(401, "invalid_token", "The access token provided is invalid.")
        return None

    def _now(self) -> float:
        return self._fake.clock.time() + self._fake.clock_skew

    def _headers(self) -> dict[str, str]:
        return {"content-type": "application/json", "date": email.utils.formatdate(self._now(), usegmt=True)}

    def _oauth_error(self, code: str, description: str) -> Reply:
        body = json.dumps({"error": code, "error_description": description}).encode()
        return Reply(400, body, self._headers())

    def _check_assertion(self, assertion: str) -> Reply | None:
        if self._fake.jwt_public_key is None:
            return self._oauth_error("unauthorized_client", "This app is not a JWT app")
        import jwt  # noqa: PLC0415 - only JWT tests need it

        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(
                assertion,
                self._fake.jwt_public_key,
                algorithms=["RS256"],
                audience="https://api.box.com/oauth2/token",
                options={"verify_exp": False, "require": ["iss", "sub", "box_sub_type", "aud", "jti", "exp"]},
            )
        except jwt.PyJWTError as exc:
            return self._oauth_error("invalid_grant", f"Invalid assertion: {type(exc).__name__}")
        if not header.get("kid") or claims["iss"] != self._fake.client_id:
            return self._oauth_error("invalid_grant", "Invalid assertion: kid or iss")
        if claims["box_sub_type"] not in ("enterprise", "user"):
            return self._oauth_error("invalid_grant", "Invalid assertion: box_sub_type")
        now = self._now()
        if not now < claims["exp"] <= now + 60:
            return self._oauth_error("invalid_grant", "Please check the 'exp' claim.")
        return None
