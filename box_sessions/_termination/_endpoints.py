"""Box's two termination endpoints: their paths and bodies in one place, and what their answer says.

Box documents terminating a session that is already terminated as harmless, so a retry after a
lost answer, or a second copy of a stalled request, cannot do harm: every termination call asks
the sender to hedge (`SAFE_TO_SEND_TWICE`). The sender itself knows no endpoint.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Literal, TypeAlias

import attrs

from .._http import httpx
from .._json import json_object
from .._sending import CallObserver, RetryBudget, Sender

__all__ = [
    "FIELDS",
    "GROUPS_PATH",
    "SAFE_TO_SEND_TWICE",
    "USERS_PATH",
    "Field",
    "Item",
    "Kind",
    "SessionTerminationMessage",
    "groups_body",
    "request_of",
    "send",
    "users_body",
]

Field: TypeAlias = Literal["user_ids", "user_logins", "group_ids"]
#: The body keys, in the order a bulk job reads its inputs.
FIELDS: tuple[Field, ...] = ("user_ids", "user_logins", "group_ids")
#: One input value and the key it goes under.
Item: TypeAlias = tuple[Field, str]
#: Which endpoint: user ids and logins share the users endpoint.
Kind: TypeAlias = Literal["users", "groups"]

USERS_PATH = "/users/terminate_sessions"
GROUPS_PATH = "/groups/terminate_sessions"
#: Terminating twice is harmless (Box's documentation), so these requests may be hedged.
SAFE_TO_SEND_TWICE = True
#: The header by which Box names each answer; for an accepted termination, the only evidence of it.
REQUEST_ID_HEADER = "box-request-id"


@attrs.frozen
class SessionTerminationMessage:
    """Box's answer to a termination request: its jobs were created.

    Box terminates sessions asynchronously and reports outcomes in the enterprise's admin
    events; the answer carries no per-user result. Its request id is the one handle that ties
    the termination to Box's side: quote it to Box support.

    Attributes:
        message: Box's message.
        request_id: Box's id of the request (its ``box-request-id`` header); ``None`` when the
            answer carried none.
        accepted_at: When the answer came (UTC): when Box accepted the request.
    """

    message: str
    request_id: str | None = None
    accepted_at: datetime.datetime = attrs.field(factory=lambda: datetime.datetime.now(datetime.timezone.utc))


def users_body(user_ids: Sequence[str], user_logins: Sequence[str]) -> dict[str, list[str]]:
    """The users endpoint's body: both keys always, as Box's SDKs send it (an empty list where none)."""
    return {"user_ids": list(user_ids), "user_logins": list(user_logins)}


def groups_body(group_ids: Sequence[str]) -> dict[str, list[str]]:
    """The groups endpoint's body."""
    return {"group_ids": list(group_ids)}


def request_of(kind: Kind, items: Sequence[Item]) -> tuple[str, dict[str, list[str]]]:
    """The API path (after ``/2.0``) and JSON body of one batch of items."""
    if kind == "groups":
        return GROUPS_PATH, groups_body([v for _, v in items])
    return USERS_PATH, users_body([v for f, v in items if f == "user_ids"], [v for f, v in items if f == "user_logins"])


def _message(response: httpx.Response, *, now: float) -> SessionTerminationMessage:
    message = json_object(response.content).get("message")
    return SessionTerminationMessage(
        message if isinstance(message, str) else "",
        request_id=response.headers.get(REQUEST_ID_HEADER) or None,
        accepted_at=datetime.datetime.fromtimestamp(now, datetime.timezone.utc),
    )


async def send(
    sender: Sender,
    path: str,
    body: dict[str, list[str]],
    *,
    observer: CallObserver | None = None,
    budget: RetryBudget | None = None,
) -> SessionTerminationMessage:
    """POST one termination request through ``sender``; return Box's message.

    Raises:
        BoxError: the request failed (see the errors module for the classes).
    """
    response = await sender.post_json(path, body, hedge=SAFE_TO_SEND_TWICE, observer=observer, budget=budget)
    return _message(response, now=sender.clock.time())
