"""Credentials from the environment, never from flags: a developer token or CCG client credentials."""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from .._auth import BoxAuth, CCGAuth, DeveloperTokenAuth
from .._client import DEFAULT_BASE_URL
from .._http import httpx
from ._exit import UsageError

__all__ = ["Credentials", "credentials_from_env"]


@attrs.frozen
class Credentials:
    """The auth a job uses, and whom it acts for.

    Attributes:
        auth: The auth method.
        subject: Whom the credentials act for, without a secret in clear: the CCG client id and its
            enterprise or user id, or a hash of the developer token (which names no one itself).
            Part of a journal's job identity.
    """

    auth: BoxAuth
    subject: str


def _subject(auth: DeveloperTokenAuth | CCGAuth) -> str:
    """Whom ``auth`` acts for, as `BoxAuth.identity` says it (the same words whatever the host)."""
    return auth.identity(httpx.URL(DEFAULT_BASE_URL + "/oauth2/token")).describe()


def credentials_from_env(env: Mapping[str, str]) -> Credentials:
    """Credentials from the environment: a developer token, or CCG client id and secret.

    Raises:
        UsageError: none, both kinds, or an incomplete set of CCG variables.
    """
    token = env.get("BOX_DEVELOPER_TOKEN", "").strip()
    client_id, secret = env.get("BOX_CLIENT_ID", "").strip(), env.get("BOX_CLIENT_SECRET", "").strip()
    enterprise, user = env.get("BOX_ENTERPRISE_ID", "").strip(), env.get("BOX_USER_ID", "").strip()
    if token and (client_id or secret):
        raise UsageError("set either BOX_DEVELOPER_TOKEN or BOX_CLIENT_ID/BOX_CLIENT_SECRET, not both")
    if token:
        developer = DeveloperTokenAuth(token)
        return Credentials(developer, _subject(developer))
    if not (client_id or secret):
        raise UsageError(
            "no credentials: set BOX_DEVELOPER_TOKEN, or BOX_CLIENT_ID, BOX_CLIENT_SECRET and "
            "BOX_ENTERPRISE_ID (or BOX_USER_ID)"
        )
    if not (client_id and secret):
        raise UsageError("BOX_CLIENT_ID and BOX_CLIENT_SECRET must both be set")
    if bool(enterprise) == bool(user):
        raise UsageError("set exactly one of BOX_ENTERPRISE_ID and BOX_USER_ID with the client credentials")
    try:
        auth = CCGAuth(
            client_id=client_id, client_secret=secret, enterprise_id=enterprise or None, user_id=user or None
        )
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    return Credentials(auth, _subject(auth))
