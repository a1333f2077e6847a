"""FakeBox refuses what Box refuses, with Box's status, code and message: in-process and over loopback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from box_sessions.testing import FakeBox

from ..support.http import httpx

USERS = "/2.0/users/terminate_sessions"
GROUPS = "/2.0/groups/terminate_sessions"
TOKEN = "/oauth2/token"
AUTH = {"authorization": "Bearer fake-developer-token"}
BOX_ERROR_KEYS = {"type", "status", "code", "help_url", "message", "request_id", "context_info"}


@pytest.fixture
async def box(fake_box: FakeBox) -> AsyncIterator[httpx.AsyncClient]:
    """A plain httpx client on the fake's in-process transport, with the fake's developer token."""
    async with httpx.AsyncClient(transport=fake_box.transport(), base_url="https://api.box.com", headers=AUTH) as http:
        yield http


def box_error(response: httpx.Response) -> dict[str, Any]:
    """The body of an error answer, checked to be in Box's ``ClientError`` shape."""
    body: dict[str, Any] = response.json()
    assert set(body) == BOX_ERROR_KEYS
    assert body["type"] == "error"
    assert body["status"] == response.status_code
    return body


NOT_ARRAYS_OF_STRINGS = [
    pytest.param(0, id="zero"),
    pytest.param(False, id="false"),
    pytest.param({}, id="object"),
    pytest.param("", id="empty-string"),
    pytest.param("123", id="string"),
    pytest.param(None, id="null"),
    pytest.param([1], id="int-item"),
    pytest.param([True], id="bool-item"),
    pytest.param(["1", None], id="null-item"),
    pytest.param([["1"]], id="nested-array"),
]


@pytest.mark.parametrize("value", NOT_ARRAYS_OF_STRINGS)
@pytest.mark.parametrize("field", ["user_ids", "user_logins"])
async def test_user_list_that_is_not_an_array_of_strings_is_400(
    box: httpx.AsyncClient, fake_box: FakeBox, field: str, value: object
) -> None:
    """A user_ids or user_logins that is not an array of strings is 400 "User id format is string"."""
    body = {"user_ids": ["1"], "user_logins": ["a@example.com"], field: value}
    response = await box.post(USERS, json=body)
    assert response.status_code == 400
    assert box_error(response)["code"] == "bad_request"
    assert box_error(response)["message"] == "User id format is string"
    assert fake_box.terminated_count == 0


@pytest.mark.parametrize("value", NOT_ARRAYS_OF_STRINGS)
async def test_group_ids_that_is_not_an_array_of_strings_is_400(
    box: httpx.AsyncClient, fake_box: FakeBox, value: object
) -> None:
    """A group_ids that is not an array of strings is 400 with Box's groups wording, "group id format is string"."""
    response = await box.post(GROUPS, json={"group_ids": value})
    assert response.status_code == 400
    assert box_error(response)["message"] == "group id format is string"
    assert fake_box.terminated_count == 0


@pytest.mark.parametrize(
    ("path", "value"),
    [
        pytest.param(USERS, "١٢٣", id="arabic-indic"),
        pytest.param(USERS, "²", id="superscript"),
        pytest.param(USERS, "\uff11\uff12", id="fullwidth"),
        pytest.param(USERS, "", id="empty-id"),
        pytest.param(USERS, " 1", id="space"),
        pytest.param(USERS, "-1", id="negative"),
        pytest.param(GROUPS, "٣", id="group-arabic-indic"),
        pytest.param(GROUPS, "", id="group-empty"),
    ],
)
async def test_id_that_is_not_ascii_digits_is_400(
    box: httpx.AsyncClient, fake_box: FakeBox, path: str, value: str
) -> None:
    """An id with anything but ASCII digits (Unicode digits included) is 400 with Box's id-format message."""
    if path == GROUPS:
        body, message = {"group_ids": [value]}, "group id format is string"
    else:
        body, message = {"user_ids": [value], "user_logins": []}, "User id format is string"
    response = await box.post(path, json=body)
    assert response.status_code == 400
    assert box_error(response)["message"] == message
    assert fake_box.terminated_count == 0


@pytest.mark.parametrize("login", [pytest.param("", id="empty"), pytest.param("  ", id="blank")])
async def test_empty_login_is_400(box: httpx.AsyncClient, fake_box: FakeBox, login: str) -> None:
    """An empty or blank login is 400 "Users can not be NULL or EMPTY", even beside a valid id."""
    response = await box.post(USERS, json={"user_ids": ["1"], "user_logins": [login]})
    assert response.status_code == 400
    assert box_error(response)["message"] == "Users can not be NULL or EMPTY"
    assert fake_box.terminated_count == 0


@pytest.mark.parametrize(
    ("path", "body", "missing"),
    [
        pytest.param(USERS, {"user_ids": ["1"]}, ["user_logins"], id="users-without-logins"),
        pytest.param(USERS, {"user_logins": ["a@example.com"]}, ["user_ids"], id="users-without-ids"),
        pytest.param(USERS, {}, ["user_ids", "user_logins"], id="users-empty-object"),
        pytest.param(GROUPS, {}, ["group_ids"], id="groups-empty-object"),
        pytest.param(GROUPS, {"user_ids": ["1"]}, ["group_ids"], id="groups-with-user-key"),
    ],
)
async def test_body_without_a_required_key_is_400(
    box: httpx.AsyncClient, fake_box: FakeBox, path: str, body: dict[str, Any], missing: list[str]
) -> None:
    """A body without a key the specification requires is 400 "Bad Request", naming each key as Box does."""
    response = await box.post(path, json=body)
    assert response.status_code == 400
    error = box_error(response)
    assert (error["code"], error["message"]) == ("bad_request", "Bad Request")
    assert [e["name"] for e in error["context_info"]["errors"]] == missing
    assert {e["reason"] for e in error["context_info"]["errors"]} == {"missing_parameter"}
    assert fake_box.terminated_count == 0


@pytest.mark.parametrize(
    ("headers", "content"),
    [
        pytest.param({}, b'{"group_ids": ["1"]}', id="no-content-type"),
        pytest.param({"content-type": "text/plain"}, b'{"group_ids": ["1"]}', id="text-plain"),
        pytest.param({"content-type": "application/x-www-form-urlencoded"}, b"group_ids=1", id="form"),
        pytest.param({"content-type": "application/jsonx"}, b'{"group_ids": ["1"]}', id="json-prefix"),
        pytest.param({"content-type": "application/json"}, b'{"group_ids": ["1"]', id="truncated-json"),
        pytest.param({"content-type": "application/json"}, b'{"group_ids": ["\xff"]}', id="not-utf8"),
        pytest.param({"content-type": "application/json"}, b'["1"]', id="array"),
        pytest.param({"content-type": "application/json"}, b"", id="empty-body"),
    ],
)
async def test_body_that_is_not_a_json_object_is_400(
    box: httpx.AsyncClient, fake_box: FakeBox, headers: dict[str, str], content: bytes
) -> None:
    """A body not sent as application/json, or not a UTF-8 JSON object, is 400 "Supported payload format is JSON"."""
    response = await box.post(GROUPS, content=content, headers=headers)
    assert response.status_code == 400
    assert box_error(response)["message"] == "Supported payload format is JSON"
    assert fake_box.terminated_count == 0


@pytest.mark.parametrize(
    "content_type",
    [
        pytest.param("application/json", id="plain"),
        pytest.param("application/json; charset=utf-8", id="charset"),
        pytest.param("Application/JSON", id="upper-case"),
    ],
)
async def test_json_content_type_with_parameters_is_accepted(
    box: httpx.AsyncClient, fake_box: FakeBox, content_type: str
) -> None:
    """application/json is matched as a media type: parameters and case do not matter."""
    response = await box.post(GROUPS, content=b'{"group_ids": ["7"]}', headers={"content-type": content_type})
    assert response.status_code == 202
    assert fake_box.terminated["group_ids"] == ["7"]


@pytest.mark.parametrize("path", [USERS, GROUPS, TOKEN])
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
async def test_method_the_path_does_not_have_is_405(box: httpx.AsyncClient, method: str, path: str) -> None:
    """GET, PUT, DELETE or PATCH on a POST-only path is 405 method_not_allowed in Box's error shape, with Allow."""
    response = await box.request(method, path, json={"group_ids": ["1"]})
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    error = box_error(response)
    assert (error["code"], error["message"]) == ("method_not_allowed", "Method Not Allowed")


async def test_post_to_the_stats_endpoint_is_405(box: httpx.AsyncClient) -> None:
    """The stats endpoint is GET only: a POST is 405 with Allow: GET."""
    response = await box.post("/_fakebox/stats", json={})
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"
    assert box_error(response)["code"] == "method_not_allowed"


async def test_unknown_path_is_still_404(box: httpx.AsyncClient) -> None:
    """A path the fake does not know is 404 whatever the method, not 405."""
    for method in ("GET", "POST"):
        response = await box.request(method, "/2.0/users")
        assert response.status_code == 404
        assert box_error(response)["code"] == "not_found"


async def test_refused_requests_are_recorded(box: httpx.AsyncClient, fake_box: FakeBox) -> None:
    """A refused request is recorded with its status, and counted."""
    await box.post(USERS, json={"user_ids": [True], "user_logins": []})
    await box.get(USERS)
    assert [(r.method, r.status) for r in fake_box.requests] == [("POST", 400), ("GET", 405)]
    assert fake_box.status_counts == {400: 1, 405: 1}


# -- the same refusals over real sockets, as a user meets `fake.serve()` ------------------------


@pytest.mark.parametrize(
    ("method", "path", "request_kwargs", "status", "message"),
    [
        pytest.param(
            "POST",
            USERS,
            {"json": {"user_ids": [True], "user_logins": []}},
            400,
            "User id format is string",
            id="bool-id",
        ),
        pytest.param(
            "POST", USERS, {"json": {"user_ids": 0, "user_logins": []}}, 400, "User id format is string", id="zero"
        ),
        pytest.param("POST", GROUPS, {"json": {"group_ids": {}}}, 400, "group id format is string", id="group-object"),
        pytest.param(
            "POST",
            USERS,
            {"json": {"user_ids": ["²"], "user_logins": []}},
            400,
            "User id format is string",
            id="superscript",
        ),
        pytest.param("POST", USERS, {"json": {"user_ids": ["1"]}}, 400, "Bad Request", id="missing-logins"),
        pytest.param(
            "POST",
            GROUPS,
            {"content": b'{"group_ids": ["1"]}', "headers": {"content-type": "text/plain"}},
            400,
            "Supported payload format is JSON",
            id="text-plain",
        ),
        pytest.param("GET", USERS, {}, 405, "Method Not Allowed", id="get-users"),
        pytest.param("DELETE", GROUPS, {}, 405, "Method Not Allowed", id="delete-groups"),
        pytest.param("GET", TOKEN, {}, 405, "Method Not Allowed", id="get-token"),
    ],
)
async def test_served_fake_refuses_as_box_does(
    method: str, path: str, request_kwargs: dict[str, Any], status: int, message: str
) -> None:
    """Over 127.0.0.1, raw httpx requests Box refuses get Box's status and message in its error shape."""
    fake = FakeBox()
    async with fake.serve() as base_url, httpx.AsyncClient(base_url=base_url, headers=AUTH) as http:
        response = await http.request(method, path, **request_kwargs)
    assert response.status_code == status
    assert box_error(response)["message"] == message
    assert fake.terminated_count == 0


async def test_served_fake_still_accepts_what_box_accepts() -> None:
    """Over 127.0.0.1, the body Box's SDKs send (both user keys, one empty) is accepted."""
    fake = FakeBox()
    async with fake.serve() as base_url, httpx.AsyncClient(base_url=base_url, headers=AUTH) as http:
        users = await http.post(USERS, json={"user_ids": ["1"], "user_logins": []})
        groups = await http.post(GROUPS, json={"group_ids": ["9"]})
    assert (users.status_code, groups.status_code) == (202, 202)
    assert json.loads(users.content)["message"].startswith("Request is successful")
    assert fake.terminated == {"user_ids": ["1"], "user_logins": [], "group_ids": ["9"]}
