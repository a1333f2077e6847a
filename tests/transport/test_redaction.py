"""The suite-wide redaction check catches leaks, and reprs, errors and reports hold no secret."""

from __future__ import annotations

import json
import logging

import pytest

from box_sessions import BoxClient, CCGAuth, DeveloperTokenAuth, OAuth2Auth

from ..conftest import TOKEN_URL, USERS_URL, accepted, box_error, find_secret, token_answer
from ..support.routes import Routes


@pytest.mark.parametrize(
    "text",
    [
        "send_request_headers.started Authorization: Bearer abcdef123456",
        "form: grant_type=client_credentials&client_secret=xyz",
        "token fake-access-0123456789abcdef",
        "-----BEGIN PRIVATE KEY-----",
        "refresh_token=abc",
    ],
)
def test_redaction_check_catches_leaks(text: str) -> None:
    """The matcher behind the autouse fixture flags each kind of secret."""
    assert find_secret(text) is not None


@pytest.mark.parametrize(
    "text",
    [
        "Retrying POST /2.0/users/terminate_sessions after 429 (attempt 1 of 5)",
        "CCGAuth(client_id='c', client_secret=***)",
    ],
)
def test_redaction_check_passes_clean_text(text: str) -> None:
    """Ordinary log lines and redacted reprs are not flagged."""
    assert find_secret(text) is None


async def test_debug_logs_of_every_library_hold_no_secret(routes: Routes, caplog: pytest.LogCaptureFixture) -> None:
    """A CCG call with a refresh after 401, logged at DEBUG by httpx, httpcore and us, leaks nothing."""
    routes.post(TOKEN_URL).mock(side_effect=[token_answer("tok-secret-1"), token_answer("tok-secret-2")])
    routes.post(USERS_URL).mock(side_effect=[accepted(), box_error(401), box_error(503), accepted()])
    with caplog.at_level(logging.DEBUG):
        async with BoxClient(
            CCGAuth(client_id="cid", client_secret="very-secret", enterprise_id="1"),
            rate_limit=None,
            transport=routes.transport,
        ) as client:
            await client.session_termination.terminate_users_sessions(["1"])
            await client.session_termination.terminate_users_sessions(["2"])  # 401: refresh; 503: retry
    assert len(caplog.records) >= 3  # the retry, the refresh note and httpx's request lines were captured
    assert all(find_secret(r.getMessage()) is None for r in caplog.records)


async def test_errors_reports_and_reprs_hold_no_secret(routes: Routes) -> None:
    """Exception text, the report (str and JSON) and reprs of every auth class show no secret."""
    routes.post(USERS_URL).mock(return_value=box_error(401, "invalid_token", "The access token is invalid"))
    async with BoxClient(DeveloperTokenAuth("dev-token"), rate_limit=None, transport=routes.transport) as client:
        report = await client.session_termination.terminate(user_ids=["1", "2"])
        text = repr(client)
    text += str(report) + json.dumps(report.to_dict()) + "".join(f"{f.error!s}{f.error!r}" for f in report.failed)
    text += repr(CCGAuth(client_id="c", client_secret="very-secret", user_id=1))
    text += repr(OAuth2Auth(client_id="c", client_secret="very-secret", refresh_token="r3fr3sh"))
    assert report.stopped_by is not None
    assert find_secret(text) is None
