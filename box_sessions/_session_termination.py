"""The session-termination manager: ``client.session_termination``."""

from __future__ import annotations

import json
from collections.abc import Iterable

import attrs
import httpx

from ._transport import Transport
from ._validation import normalise_id_list, normalise_login_list

__all__ = ["SessionTerminationManager", "SessionTerminationMessage"]

USERS_PATH = "/users/terminate_sessions"
GROUPS_PATH = "/groups/terminate_sessions"


@attrs.frozen
class SessionTerminationMessage:
    """Box's answer to a termination request: its jobs were created.

    Box terminates sessions asynchronously and reports outcomes in the enterprise's admin
    events; the answer carries no per-user result.
    """

    message: str


def _message(response: httpx.Response) -> SessionTerminationMessage:
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    message = body.get("message") if isinstance(body, dict) else None
    return SessionTerminationMessage(message if isinstance(message, str) else "")


class SessionTerminationManager:
    """Terminates users' and groups' sessions. Reached as ``client.session_termination``."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    async def terminate_users_sessions(
        self,
        user_ids: Iterable[str | int] | None = None,
        user_logins: Iterable[str] | None = None,
    ) -> SessionTerminationMessage:
        """Terminate the sessions of the given users in one request.

        The JSON body always carries both ``user_ids`` and ``user_logins``, as Box's SDKs send it.
        Duplicates are sent once. For any number of ids, in batches, use `terminate`.

        Args:
            user_ids: User ids, as ``str`` of digits or ``int``.
            user_logins: User logins (email addresses).

        Returns:
            Box's message that the termination jobs were created.

        Raises:
            TypeError, ValueError: an argument is of the wrong type or holds a bad value, or both
                are empty; raised before anything is sent.
            BoxError: the request failed (see the errors module for the classes).
        """
        ids = normalise_id_list(user_ids, "user_ids")
        logins = normalise_login_list(user_logins, "user_logins")
        if not ids and not logins:
            raise ValueError("user_ids and user_logins are both empty: give at least one user")
        response = await self._transport.post_json(USERS_PATH, {"user_ids": ids, "user_logins": logins})
        return _message(response)

    async def terminate_groups_sessions(self, group_ids: Iterable[str | int]) -> SessionTerminationMessage:
        """Terminate the sessions of every member of the given groups in one request.

        Args:
            group_ids: Group ids, as ``str`` of digits or ``int``.

        Returns:
            Box's message that the termination jobs were created.

        Raises:
            TypeError, ValueError: ``group_ids`` is of the wrong type, holds a bad value or is
                empty; raised before anything is sent.
            BoxError: the request failed.
        """
        ids = normalise_id_list(group_ids, "group_ids")
        if not ids:
            raise ValueError("group_ids is empty: give at least one group id")
        response = await self._transport.post_json(GROUPS_PATH, {"group_ids": ids})
        return _message(response)
