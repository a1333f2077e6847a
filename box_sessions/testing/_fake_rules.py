"""What Box's termination endpoints refuse, and Box's error answers, for `FakeBox`.

Box's paths and the one method each has, the body keys each termination endpoint requires, the
checks of a body as Box makes them (in Box's order, with Box's 400 messages) and the ``ClientError``
shape every refusal is sent in. Nothing here keeps state: `FakeBox` passes its settings in.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from typing import Any

import attrs

from ._server import Reply, Request

__all__ = [
    "ACCEPTED_MESSAGE",
    "FIELDS",
    "GROUPS_PATH",
    "METHODS",
    "NOT_JSON",
    "OAUTH2_PATH",
    "REQUEST_ID_HEADER",
    "REQUIRED_FIELDS",
    "USERS_PATH",
    "access_denied",
    "error",
    "json_object",
    "method_refusal",
    "refusal",
    "server_error",
    "with_request_id",
]

ACCEPTED_MESSAGE = "Request is successful, please check the admin events for the status of the job"
HELP_URL = "https://developer.box.com/guides/api-calls/permissions-and-errors/common-errors/"
USERS_PATH = "/2.0/users/terminate_sessions"
GROUPS_PATH = "/2.0/groups/terminate_sessions"
OAUTH2_PATH = "/oauth2/token"
FIELDS = ("user_ids", "user_logins", "group_ids")
#: The body keys each termination endpoint requires (Box's OpenAPI description marks both user keys required).
REQUIRED_FIELDS = {USERS_PATH: ("user_ids", "user_logins"), GROUPS_PATH: ("group_ids",)}
#: The one method each of Box's paths has; any other is answered 405.
METHODS = {USERS_PATH: "POST", GROUPS_PATH: "POST", OAUTH2_PATH: "POST"}
SERVER_ERRORS = {
    500: ("internal_server_error", "Internal Server Error"),
    502: ("bad_gateway", "Bad Gateway"),
    503: ("unavailable", "Service Unavailable"),
}
NOT_JSON = "Supported payload format is JSON"


def error(
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    *,
    context_info: dict[str, Any] | None = None,
) -> Reply:
    """An error answer in Box's ``ClientError`` shape."""
    request_id = secrets.token_hex(6)
    body = {
        "type": "error",
        "status": status,
        "code": code,
        "help_url": HELP_URL,
        "message": message,
        "request_id": request_id,
        "context_info": context_info or {},
    }
    sent = {"content-type": "application/json", REQUEST_ID_HEADER: request_id, **(headers or {})}
    return Reply(status, json.dumps(body).encode(), sent)


#: The header Box names each answer with; an error body repeats it as ``request_id``.
REQUEST_ID_HEADER = "box-request-id"


def with_request_id(reply: Reply) -> Reply:
    """``reply`` with a ``box-request-id`` header, as every answer of Box has (an error's is its body's id)."""
    if REQUEST_ID_HEADER in reply.headers:
        return reply
    return attrs.evolve(reply, headers={**reply.headers, REQUEST_ID_HEADER: secrets.token_hex(6)})


def method_refusal(method: str, allowed: str | None) -> Reply | None:
    """Box's 404 for a path it does not have (``allowed`` is ``None``), its 405 for a method the path lacks."""
    if allowed is None:
        return error(404, "not_found", "Not Found")
    if method != allowed:
        return error(405, "method_not_allowed", "Method Not Allowed", {"allow": allowed})
    return None


def access_denied() -> Reply:
    """Box's 403 for a user without the rights to terminate sessions."""
    return error(403, "access_denied_insufficient_permissions", "Access denied - insufficient permission")


def server_error(status: int) -> Reply:
    """Box's answer of a server fault: 500, 502 or 503 with Box's code and message for it."""
    return error(status, *SERVER_ERRORS[status])


def json_object(request: Request) -> dict[str, Any] | None:
    """The body as a JSON object, or ``None`` when it is not ``application/json`` or not an object."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != "application/json":
        return None
    try:
        body = json.loads(request.body.decode("utf-8"))  # JSON on the wire is UTF-8
    except ValueError:  # UnicodeDecodeError is a ValueError too
        return None
    return body if isinstance(body, dict) else None


def refusal(  # noqa: PLR0911 - one return per refusal
    path: str,
    body: dict[str, Any],
    *,
    max_batch: int | None,
    known: Mapping[str, frozenset[str] | None],
) -> Reply | None:
    """Box's answer refusing a termination body, or ``None`` when Box would accept it.

    Args:
        path: `USERS_PATH` or `GROUPS_PATH`.
        body: The request's JSON object.
        max_batch: The most ids one request may carry; ``None``: no limit.
        known: The ids each field may name (``user_ids``, ``user_logins``, ``group_ids``); ``None``: any.
    """
    fields = REQUIRED_FIELDS[path]
    noun = "Groups" if path == GROUPS_PATH else "Users"
    id_format = "group id format is string" if path == GROUPS_PATH else "User id format is string"
    # Malformed values first, then missing keys: a body with both is told about what it sent.
    for field in fields:
        items = body.get(field, [])
        if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
            return error(400, "bad_request", id_format)
        if field != "user_logins" and not all(_is_id(v) for v in items):
            return error(400, "bad_request", id_format)
    missing = [f for f in fields if f not in body]
    if missing:
        return _missing(missing)
    values: dict[str, list[str]] = {f: body[f] for f in fields}
    if not any(values.values()) or any(not v.strip() for v in values.get("user_logins", [])):
        return error(400, "bad_request", f"{noun} can not be NULL or EMPTY")
    count = sum(len(v) for v in values.values())
    if max_batch is not None and count > max_batch:
        return error(400, "bad_request", f"Too many ids in one request: {count}, at most {max_batch}")
    for field, items in values.items():
        allowed = known[field]
        if allowed is not None and any(v not in allowed for v in items):
            return error(404, "not_found", f"{'Group' if field == 'group_ids' else 'User'} not found")
    return None


def _is_id(value: str) -> bool:
    # str.isdigit() also takes "١٢٣" and "²"; Box's ids are ASCII digits.
    return value.isascii() and value.isdigit()


def _missing(fields: list[str]) -> Reply:
    """Box's answer to a body without a required key: "Bad Request", the keys in ``context_info``."""
    errors = [{"reason": "missing_parameter", "name": f, "message": f"'{f}' is required"} for f in fields]
    return error(400, "bad_request", "Bad Request", context_info={"errors": errors})
