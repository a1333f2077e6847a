"""Issue 10, secrets: a token endpoint that echoes the form it received leaks nothing through errors,
reports or the command line; ``***`` stands where a secret was."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from box_sessions import (
    AuthenticationError,
    BoxAPIError,
    BoxClient,
    RetryPolicy,
    ServerError,
)

from ..conftest import REFRESH_TOKEN, auth_of_kind
from ..support.hostile import Action, HostileServer, Request, accepted, html_echo, oauth_echo, serve

TOKEN = "/oauth2/token"
SECRET = "very-secret"  # the client secret of every kind of credentials auth_of_kind makes
RETRY = RetryPolicy(max_attempts=2, initial_backoff=0.01, max_backoff=0.01, total_timeout=20)
ECHOES: dict[str, tuple[Callable[[Request], Action], type[BoxAPIError]]] = {
    "oauth-400": (oauth_echo, AuthenticationError),
    "html-500": (html_echo, ServerError),
}


def echoing(echo: Callable[[Request], Action]) -> Callable[[Request], Action]:
    def handler(request: Request) -> Action:
        return echo(request) if request.path == TOKEN else accepted()

    return handler


@pytest.fixture
def private_key(rsa_keys: tuple[str, str]) -> str:
    return rsa_keys[0]


def secrets_sent(server: HostileServer) -> set[str]:
    """Every secret value the token endpoint received: client secret, refresh token, JWT assertion."""
    found = set()
    for request in server.requests(TOKEN):
        form = request.form()
        found |= {form[key] for key in ("client_secret", "refresh_token", "assertion") if key in form}
    return found


def leaked(text: str, secrets: set[str]) -> str | None:
    """The start of a secret that ``text`` shows, whole or any 16 characters of it (a quote cut short)."""
    for secret in secrets:
        width = min(len(secret), 16)
        if any(secret[i : i + width] in text for i in range(len(secret) - width + 1)):
            return secret[:6]
    return None


def assert_redacted(text: str, secrets: set[str]) -> None:
    found = leaked(text, secrets)
    assert found is None, f"a secret ({found}...) shows in: {text[:300]}"
    assert "***" in text, f"no *** where the echoed secret was: {text[:300]}"


@pytest.mark.parametrize("auth_kind", ["ccg", "oauth2", "jwt"])
@pytest.mark.parametrize("echo", list(ECHOES))
async def test_an_echoing_token_endpoint_leaks_nothing_through_the_error(
    echo: str, auth_kind: str, private_key: str
) -> None:
    """str(), repr() and .message of the token error show *** instead of the secrets the endpoint echoed."""
    handler, error_class = ECHOES[echo]
    with serve(echoing(handler)) as server:
        async with BoxClient(
            auth_of_kind(auth_kind, private_key=private_key), base_url=server.url, rate_limit=None, retry=RETRY
        ) as client:
            with pytest.raises(error_class) as raised:
                await asyncio.wait_for(client.session_termination.terminate_users_sessions(user_ids=["1"]), 10)
        secrets = secrets_sent(server)
    assert SECRET in secrets  # the endpoint did receive, and echo, the secrets
    assert auth_kind != "oauth2" or REFRESH_TOKEN in secrets
    assert auth_kind != "jwt" or len(secrets) == 2
    assert_redacted(str(raised.value), secrets)
    assert_redacted(repr(raised.value), secrets)
    assert_redacted(raised.value.message, secrets)


@pytest.mark.parametrize("echo", list(ECHOES))
async def test_an_echoing_token_endpoint_leaks_nothing_through_the_report(echo: str, private_key: str) -> None:
    """A bulk job whose token request fails: report.to_dict() and str(report) show *** instead of the secret."""
    handler, error_class = ECHOES[echo]
    with serve(echoing(handler)) as server:
        async with BoxClient(
            auth_of_kind("ccg", private_key=private_key), base_url=server.url, rate_limit=None, retry=RETRY
        ) as client:
            report = await asyncio.wait_for(client.session_termination.terminate(user_ids=["1", "2", "3"]), 10)
        secrets = secrets_sent(server)
    assert len(report.failed) == 3
    assert all(isinstance(failure.error, error_class) for failure in report.failed)
    assert_redacted(json.dumps(report.to_dict()), secrets)
    assert leaked(str(report), secrets) is None
    assert leaked(repr(report), secrets) is None


@pytest.mark.parametrize("echo", list(ECHOES))
def test_an_echoing_token_endpoint_leaks_nothing_through_the_command_line(echo: str, tmp_path: Path) -> None:
    """box-sessions terminate: the report file, the journal and stderr show *** instead of the client secret."""
    handler, error_class = ECHOES[echo]
    report, journal = tmp_path / "report.jsonl", tmp_path / "journal.sqlite"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOX_")}
    env.update(BOX_CLIENT_ID="cid", BOX_CLIENT_SECRET=SECRET, BOX_ENTERPRISE_ID="42")
    with serve(echoing(handler)) as server:
        run = subprocess.run(  # noqa: S603 - our own interpreter running our own command
            [
                sys.executable,
                "-m",
                "box_sessions",
                "terminate",
                *("--user-id", "1", "--user-id", "2"),
                *("--base-url", server.url, "--report", str(report), "--journal", str(journal)),
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        secrets = secrets_sent(server)
    # Credentials the token endpoint refuses are a credential error (2); a failing endpoint fails the inputs (1).
    assert run.returncode == (2 if error_class is AuthenticationError else 1), run.stderr
    assert SECRET in secrets
    assert_redacted(report.read_text(), secrets)
    assert leaked(journal.read_bytes().decode("latin-1"), secrets) is None
    assert leaked(run.stderr, secrets) is None
    assert leaked(run.stdout, secrets) is None
