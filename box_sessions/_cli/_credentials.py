"""Credentials from the environment, never from flags: a developer token or CCG client credentials."""

from __future__ import annotations

from collections.abc import Mapping

from .._auth import BoxAuth, CCGAuth, DeveloperTokenAuth
from ._exit import UsageError


def auth_from_env(env: Mapping[str, str]) -> BoxAuth:
    """Credentials from the environment: a developer token, or CCG client id and secret."""
    token = env.get("BOX_DEVELOPER_TOKEN", "").strip()
    client_id, secret = env.get("BOX_CLIENT_ID", "").strip(), env.get("BOX_CLIENT_SECRET", "").strip()
    enterprise, user = env.get("BOX_ENTERPRISE_ID", "").strip(), env.get("BOX_USER_ID", "").strip()
    if token and (client_id or secret):
        raise UsageError("set either BOX_DEVELOPER_TOKEN or BOX_CLIENT_ID/BOX_CLIENT_SECRET, not both")
    if token:
        return DeveloperTokenAuth(token)
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
        return CCGAuth(
            client_id=client_id, client_secret=secret, enterprise_id=enterprise or None, user_id=user or None
        )
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None
