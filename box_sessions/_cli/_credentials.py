"""Credentials from the environment, never from flags: a developer token or CCG client credentials."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import attrs

from .._auth import BoxAuth, CCGAuth, DeveloperTokenAuth
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


def _token_hash(token: str) -> str:
    """A short SHA-256 of a developer token: tells tokens apart, and cannot give the token back."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


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
        return Credentials(DeveloperTokenAuth(token), f"developer token sha256:{_token_hash(token)}")
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
    subject = f"enterprise {enterprise}" if enterprise else f"user {user}"
    return Credentials(auth, f"client {client_id} as {subject}")
