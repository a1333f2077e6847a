"""Developer tokens, and apps with a client id and secret: CCG, and the base of JWT and OAuth 2.0."""

from __future__ import annotations

import hashlib
from typing import ClassVar

import attrs

from .._clock import Clock
from .._http import httpx
from .._validation import check_secure_url, normalise_id
from ._cache import BoxAuth, TokenRequester
from ._grant import TokenGrant, unsendable_part
from ._identity import BoxIdentity

__all__ = [
    "AppAuth",
    "CCGAuth",
    "DeveloperTokenAuth",
    "SubjectAuth",
    "bearer_token",
    "non_empty_str",
    "optional_bearer_token",
    "optional_non_empty_str",
    "strip_str",
]


def non_empty_str(_inst: object, attribute: attrs.Attribute[str], value: object) -> None:
    """attrs validator: a non-blank ``str``, named by its argument in the error."""
    if not isinstance(value, str):
        raise TypeError(f"{attribute.alias or attribute.name} must be a str, got {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{attribute.alias or attribute.name} must not be empty")


def optional_non_empty_str(_inst: object, attribute: attrs.Attribute[str | None], value: object) -> None:
    """attrs validator: ``None`` or a non-blank ``str``."""
    if value is not None:
        non_empty_str(_inst, attribute, value)  # type: ignore[arg-type]


def strip_str(value: object) -> object:
    """attrs converter: drop white space around a ``str`` (a token read from a file keeps its newline)."""
    return value.strip() if isinstance(value, str) else value


def bearer_token(inst: object, attribute: attrs.Attribute[str], value: object) -> None:
    """attrs validator: a non-blank ``str`` that can go in an ``Authorization`` header.

    The error names the argument and what is wrong, never the token.
    """
    non_empty_str(inst, attribute, value)
    unsendable = unsendable_part(value) if isinstance(value, str) else None
    if unsendable is not None:
        raise ValueError(
            f"{attribute.alias or attribute.name} must be printable ASCII without spaces, as Box's tokens are: "
            f"it holds {unsendable} (white space around it is dropped)"
        )


def optional_bearer_token(inst: object, attribute: attrs.Attribute[str | None], value: object) -> None:
    """attrs validator: ``None`` or a `bearer_token`."""
    if value is not None:
        bearer_token(inst, attribute, value)  # type: ignore[arg-type]


@attrs.define(slots=False, repr=False)
class DeveloperTokenAuth(BoxAuth):
    """A developer token pasted from Box's developer console.

    It lasts 60 minutes and cannot be refreshed: when Box refuses it, calls raise
    `AuthenticationError` saying so.

    Args:
        token: The developer token. White space around it (a newline from a file) is dropped.
            Never shown in a repr, a log or an error.

    Raises:
        TypeError: ``token`` is not a ``str``.
        ValueError: ``token`` is empty, or holds white space, a control or a non-ASCII character
            (the message says which and where, not the token).
    """

    can_refresh: ClassVar[bool] = False
    _token: str = attrs.field(converter=strip_str, validator=bearer_token, alias="token")

    async def _fetch(self, request_token: TokenRequester, token_url: httpx.URL, clock: Clock) -> TokenGrant:
        return TokenGrant(access_token=self._token, expires_in=None, issued_now=False)

    def identity(self, default_token_url: httpx.URL) -> BoxIdentity:
        """The developer token's user, named by a SHA-256 digest of the token (never the token)."""
        digest = hashlib.sha256(self._token.encode()).hexdigest()
        return BoxIdentity(
            token_url=str(self._token_url(default_token_url)), client_id=None, subject=f"developer:{digest}"
        )

    def __repr__(self) -> str:
        return "DeveloperTokenAuth(token=***)"


def _enterprise_id(value: object) -> str | None:
    return None if value is None else normalise_id(value, "enterprise_id")


def _user_id(value: object) -> str | None:
    return None if value is None else normalise_id(value, "user_id")


def _optional_token_url(value: object) -> httpx.URL | None:
    return None if value is None else check_secure_url(value, "token_url")


@attrs.define(slots=False, kw_only=True, repr=False)
class AppAuth(BoxAuth):
    """An app with a client id and secret that gets its tokens from a token URL."""

    client_id: str = attrs.field(validator=non_empty_str)
    _client_secret: str = attrs.field(validator=non_empty_str, alias="client_secret")
    token_url: httpx.URL | None = attrs.field(default=None, converter=_optional_token_url)

    def _token_url(self, default: httpx.URL) -> httpx.URL:
        return self.token_url or default


@attrs.define(slots=False, kw_only=True, repr=False)
class SubjectAuth(AppAuth):
    """An app acting as its enterprise's service account or as one user (CCG and JWT)."""

    enterprise_id: str | None = attrs.field(default=None, converter=_enterprise_id)
    user_id: str | None = attrs.field(default=None, converter=_user_id)

    def __attrs_post_init__(self) -> None:
        if (self.enterprise_id is None) == (self.user_id is None):
            raise ValueError(f"{type(self).__name__} needs exactly one of enterprise_id and user_id")

    @property
    def _subject(self) -> tuple[str, str]:
        if self.enterprise_id is not None:
            return "enterprise", self.enterprise_id
        return "user", str(self.user_id)

    def identity(self, default_token_url: httpx.URL) -> BoxIdentity:
        """The app acting as its subject: processes of the same app and subject share one token and one rate limit."""
        kind, subject = self._subject
        return BoxIdentity(
            token_url=str(self._token_url(default_token_url)), client_id=self.client_id, subject=f"{kind}:{subject}"
        )

    def with_user_subject(self, user_id: str | int) -> SubjectAuth:
        """The same app acting as ``user_id``, with a token cache of its own."""
        return attrs.evolve(self, enterprise_id=None, user_id=user_id)

    def __repr__(self) -> str:
        kind, subject = self._subject
        return f"{type(self).__name__}(client_id={self.client_id!r}, {kind}_id={subject!r}, client_secret=***)"


@attrs.define(slots=False, kw_only=True, repr=False)
class CCGAuth(SubjectAuth):
    """Client credentials grant: a server-to-server app's client id and secret.

    Exactly one of ``enterprise_id`` (act as the app's service account) and ``user_id`` (act as
    that user) is given.

    Args:
        client_id: The app's client id.
        client_secret: The app's client secret. Never shown in a repr, a log or an error.
        enterprise_id: The enterprise whose service account the token is for.
        user_id: The user the token is for.
        token_url: Where tokens come from; by default ``{base_url}/oauth2/token`` of the client.
            Must be https (or http to a loopback host).

    Raises:
        TypeError, ValueError: an argument is missing, empty or of the wrong type.
    """

    async def _fetch(self, request_token: TokenRequester, token_url: httpx.URL, clock: Clock) -> TokenGrant:
        subject_type, subject_id = self._subject
        form = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self._client_secret,
            "box_subject_type": subject_type,
            "box_subject_id": subject_id,
        }
        return await request_token(token_url, form)
