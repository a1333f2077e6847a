"""What a token request gives: the grant, read from the token endpoint's answer."""

from __future__ import annotations

import unicodedata

import attrs

from .._errors import AuthenticationError
from .._http import httpx
from .._json import json_object

__all__ = [
    "DEFAULT_TOKEN_LIFETIME",
    "REFRESH_MARGIN",
    "TokenGrant",
    "grant_from_response",
    "refresh_after",
    "unsendable_part",
]

#: Box's documented access-token lifetime, assumed when a token answer has no usable expires_in.
DEFAULT_TOKEN_LIFETIME = 3600.0
# Refresh this long before a token expires (capped at half its lifetime for short-lived tokens),
# so that a request never leaves with a token that expires on the way.
REFRESH_MARGIN = 60.0


def refresh_after(lifetime: float) -> float:
    """Seconds after issue at which a token living ``lifetime`` seconds is replaced."""
    lifetime = max(0.0, lifetime)
    return lifetime - min(REFRESH_MARGIN, lifetime / 2)


@attrs.frozen(kw_only=True)
class TokenGrant:
    """What a token request gave.

    Attributes:
        access_token: The token.
        expires_in: Its lifetime in seconds; ``None`` when unknown (used until Box refuses it).
        refresh_token: The new refresh token (OAuth 2.0 only).
        issued_now: ``True`` when the token endpoint just issued it; ``False`` for a token that
            was stored or given (a 401 on it means "refresh", not "these credentials are bad").
    """

    access_token: str = attrs.field(repr=False)
    expires_in: float | None
    refresh_token: str | None = attrs.field(default=None, repr=False)
    issued_now: bool = True


def unsendable_part(token: str) -> str | None:
    """What in ``token`` cannot go in an ``Authorization`` header, or ``None`` when it can.

    A bearer token is printable ASCII without spaces. The answer names the kind of character and
    its position, never the token.
    """
    for position, char in enumerate(token, start=1):
        if "!" <= char <= "~":
            continue
        if char.isspace():
            kind = "white space"
        elif unicodedata.category(char) == "Cc":
            kind = "a control character"
        else:
            kind = "a non-ASCII character"
        return f"{kind} at position {position}"
    return None


def grant_from_response(response: httpx.Response) -> TokenGrant:
    """Read the token endpoint's 2xx answer: ``access_token``, ``expires_in``, ``refresh_token``.

    A missing or unusable ``expires_in`` counts as Box's documented 60 minutes.

    Raises:
        AuthenticationError: the answer has no usable access token, or one that cannot be sent in
            a header (retrying would not change it).
    """
    body = json_object(response.content)
    token = body.get("access_token")
    if token is None:
        raise AuthenticationError(
            "the token endpoint answered without an access_token", status=response.status_code, headers=response.headers
        )
    if not isinstance(token, str) or not token:
        raise AuthenticationError(
            "the token endpoint answered with an empty access_token",
            status=response.status_code,
            headers=response.headers,
        )
    unsendable = unsendable_part(token)
    if unsendable is not None:
        raise AuthenticationError(
            f"the token endpoint answered with an access_token that cannot be sent in a header: it holds {unsendable}",
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
