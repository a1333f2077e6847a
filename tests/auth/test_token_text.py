"""Tokens that go into the Authorization header are checked: surrounding white space dropped, anything else odd refused.

A token read from a file keeps its newline; a token with white space, a control or a non-ASCII
character inside cannot be sent in a header, and the error must not quote it.
"""

from __future__ import annotations

import pytest

from box_sessions import AuthenticationError, BoxClient, CCGAuth, DeveloperTokenAuth, OAuth2Auth
from box_sessions.testing import FakeBox, LoopbackServer, Reply, Request

from ..conftest import json_reply, token_body

# Bad tokens: the marker "zq7" is in each, so a message or log quoting any part of one is caught.
BAD_TOKENS = [
    pytest.param("zq7-abc def", id="space"),
    pytest.param("zq7-abc\tdef", id="tab"),
    pytest.param("zq7-abc\ndef", id="newline-inside"),
    pytest.param("zq7-abc\x00def", id="nul"),
    pytest.param("zq7-abc\x7fdef", id="del"),
    pytest.param("zq7-abc\u00e9def", id="non-ascii"),
    pytest.param("zq7-abc\u2028def", id="line-separator"),
]


@pytest.mark.parametrize("padding", ["\n", "\r\n", "  ", "\t\n"], ids=["lf", "crlf", "spaces", "tab-lf"])
async def test_developer_token_read_from_a_file_works(padding: str) -> None:
    """A developer token with surrounding white space (read from a file) is sent without it and accepted."""
    fake = FakeBox()
    auth = DeveloperTokenAuth(" " + fake.developer_token + padding)
    async with fake.serve() as url, BoxClient(auth, base_url=url, rate_limit=None) as client:
        await client.session_termination.terminate_users_sessions(["1"])
    assert fake.status_counts == {202: 1}
    assert fake.api_requests()[0].token == fake.developer_token


@pytest.mark.parametrize("token", BAD_TOKENS)
def test_developer_token_with_odd_characters_is_refused_without_quoting_it(token: str) -> None:
    """White space, a control or a non-ASCII character in a developer token is a ValueError not quoting it."""
    with pytest.raises(ValueError, match="token") as info:
        DeveloperTokenAuth(token)
    assert "zq7" not in str(info.value)
    assert "abc" not in str(info.value)


@pytest.mark.parametrize("token", BAD_TOKENS)
@pytest.mark.parametrize("argument", ["access_token", "refresh_token"])
def test_oauth2_tokens_with_odd_characters_are_refused_without_quoting_them(argument: str, token: str) -> None:
    """OAuth2Auth's access_token and refresh_token are checked the same way, naming the argument."""
    kwargs = {"refresh_token": "r3fr3sh-ok", argument: token}
    with pytest.raises(ValueError, match=argument) as info:
        OAuth2Auth(client_id="c", client_secret="s", **kwargs)  # type: ignore[arg-type]
    assert "zq7" not in str(info.value)


def test_oauth2_tokens_lose_surrounding_white_space() -> None:
    """OAuth2Auth's tokens read from files with a newline are kept without it."""
    auth = OAuth2Auth(client_id="c", client_secret="s", refresh_token="r3fr3sh\n", access_token=" acc3ss\r\n")
    assert (auth._refresh_token, auth._access_token) == ("r3fr3sh", "acc3ss")


@pytest.mark.parametrize("token", BAD_TOKENS)
async def test_token_endpoint_answering_an_unsendable_token_fails_at_once(
    token: str, caplog: pytest.LogCaptureFixture, ccg: CCGAuth
) -> None:
    """An access token from the token endpoint that cannot go in a header is an AuthenticationError, not retried."""
    paths: list[str] = []

    async def handler(request: Request) -> Reply:
        paths.append(request.path)
        return json_reply(200, token_body(token))

    async with LoopbackServer(handler) as server, BoxClient(ccg, base_url=server.url, rate_limit=None) as client:
        with pytest.raises(AuthenticationError, match="access_token") as info:
            await client.session_termination.terminate_users_sessions(["1"])
    assert paths == ["/oauth2/token"]  # one token request, no retry, no API call
    for text in (str(info.value), repr(info.value), *(r.getMessage() for r in caplog.records)):
        assert "zq7" not in text
