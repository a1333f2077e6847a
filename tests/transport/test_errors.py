"""Error bodies of every shape become the right typed error."""

from __future__ import annotations

import pytest

from box_sessions import (
    AuthenticationError,
    BadRequestError,
    BoxAPIError,
    BoxError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
)
from box_sessions._errors import error_from_response

from ..conftest import box_error
from ..support.http import httpx


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        pytest.param(400, BadRequestError, id="400"),
        pytest.param(401, AuthenticationError, id="401"),
        pytest.param(403, PermissionDeniedError, id="403"),
        pytest.param(404, NotFoundError, id="404"),
        pytest.param(409, BoxAPIError, id="409-generic"),
        pytest.param(429, RateLimitError, id="429"),
        pytest.param(500, ServerError, id="500"),
        pytest.param(502, ServerError, id="502"),
        pytest.param(503, ServerError, id="503"),
    ],
)
def test_status_maps_to_class(status: int, cls: type[BoxAPIError]) -> None:
    """Each status gets its class, and every class is a BoxError."""
    error = error_from_response(box_error(status))
    assert type(error) is cls
    assert isinstance(error, BoxError)


def test_fields_carry_what_box_sent() -> None:
    """Status, code, message, request id, help URL, context info and headers are kept."""
    error = error_from_response(box_error(404, "not_found", "User not found", x_box_thing="1"), retry_after=None)
    assert error.status == 404
    assert error.code == "not_found"
    assert error.message == "User not found"
    assert error.request_id == "req404"
    assert error.help_url is not None
    assert error.help_url.startswith("https://developer.box.com")
    assert error.context_info == {"errors": [{"reason": "invalid_parameter"}]}
    assert error.headers["x-box-thing"] == "1"
    assert str(error) == "404 not_found: User not found (request_id=req404)"


def test_retry_after_shows_in_str() -> None:
    """The retry-after Box asked for is an attribute and part of the message."""
    error = error_from_response(box_error(429, "rate_limit_exceeded", "slow down"), retry_after=30.0)
    assert error.retry_after == 30.0
    assert "retry_after=30s" in str(error)


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        pytest.param(
            httpx.Response(502, text="<html><body>Bad Gateway</body></html>"),
            "body not Box's JSON",
            id="html",
        ),
        pytest.param(httpx.Response(503), "empty body", id="empty"),
        pytest.param(httpx.Response(500, json=["not", "an", "object"]), "body not Box's JSON", id="json-list"),
        pytest.param(
            httpx.Response(400, json={"type": "error", "context_info": None}),
            "empty body",
            id="no-message",
        ),
    ],
)
def test_unusable_body_still_gives_class_and_message(response: httpx.Response, expected: str) -> None:
    """An empty or non-JSON body gives the right class and says what it got."""
    error = error_from_response(response)
    assert error.status == response.status_code
    assert expected in error.message or "HTTP" in error.message
    assert error.context_info == {}
    assert str(error).startswith(str(response.status_code))


def test_token_endpoint_error_shape() -> None:
    """The OAuth error body gives AuthenticationError with its description."""
    response = httpx.Response(
        400,
        json={"error": "invalid_client", "error_description": "The client credentials are invalid"},
    )
    error = error_from_response(response, token_endpoint=True)
    assert type(error) is AuthenticationError
    assert error.code == "invalid_client"
    assert error.message == "The client credentials are invalid"


def test_token_endpoint_server_error_stays_server_error() -> None:
    """A 5xx from the token endpoint is a ServerError, not an auth failure."""
    assert type(error_from_response(httpx.Response(503), token_endpoint=True)) is ServerError


def test_repr_is_short() -> None:
    """repr shows class, status, code and message."""
    error = error_from_response(box_error(403, "access_denied_insufficient_permissions", "no"))
    assert (
        repr(error) == "PermissionDeniedError(status=403, code='access_denied_insufficient_permissions', message='no')"
    )
