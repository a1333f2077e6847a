"""Issue 10, secrets: a server that echoes what a request carried leaks nothing through errors, reports,
spans, logs or the command line; ``***`` stands where a secret was.

First a token endpoint echoing its form in an error's body; then (a hostile review) echoes
anywhere else: an accepted answer's request id, headers and reason phrase, a malformed header line
that the HTTP library quotes in its exception, and a token answer without a token.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from box_sessions import (
    AuthenticationError,
    BoxAPIError,
    BoxClient,
    BoxConnectionError,
    DeveloperTokenAuth,
    RetryPolicy,
    ServerError,
)

from ..conftest import BOUND, REFRESH_TOKEN, auth_of_kind
from ..support.hostile import Action, Answer, HostileServer, Raw, Request, accepted, html_echo, oauth_echo, serve

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


def run_terminate(
    server: HostileServer, report: Path, journal: Path, **credentials: str
) -> subprocess.CompletedProcess[str]:
    """``box-sessions terminate`` of two user ids against ``server``; ``credentials`` its only ``BOX_`` variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOX_")}
    return subprocess.run(  # noqa: S603 - our own interpreter running our own command
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
        env={**env, **credentials},
        timeout=60,
        check=False,
    )


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
    with serve(echoing(handler)) as server:
        run = run_terminate(
            server, report, journal, BOX_CLIENT_ID="cid", BOX_CLIENT_SECRET=SECRET, BOX_ENTERPRISE_ID="42"
        )
        secrets = secrets_sent(server)
    # Credentials the token endpoint refuses are a credential error (2); a failing endpoint fails the inputs (1).
    assert run.returncode == (2 if error_class is AuthenticationError else 1), run.stderr
    assert SECRET in secrets
    assert_redacted(report.read_text(), secrets)
    assert leaked(journal.read_bytes().decode("latin-1"), secrets) is None
    assert leaked(run.stderr, secrets) is None
    assert leaked(run.stdout, secrets) is None


# -- echoes outside an error's body (a hostile review) -------------------------------------------

#: The bearer token of these tests: the suite's log check fails a test whose records show "acc3ss".
API_TOKEN = "acc3ss-token-0123456789"


def bearer(request: Request) -> str:
    return request.headers["authorization"].removeprefix("Bearer ")


def accepted_echoing(request: Request) -> Answer:
    """Box's 202 quoting the bearer token: in its request id, a header's name and value, its reason and message."""
    token = bearer(request)
    body = json.dumps({"message": f"Request is successful for {token}"}).encode()
    headers = {
        "content-type": "application/json",
        "box-request-id": f"echo-{token}",
        f"x-{token}": "1",
        "x-echo": token,
    }
    return Answer(202, body, headers, reason=f"Accepted {token}")


def malformed_echo(request: Request) -> Raw:
    """A head with a line HTTP does not allow, quoting the request's secret: the HTTP library quotes the line."""
    secret = request.form()["client_secret"] if request.path == TOKEN else bearer(request)
    return Raw(b"HTTP/1.1 401 Unauthorized\r\nx-echo " + secret.encode() + b"\r\ncontent-length: 0\r\n\r\n")


def chain_of(error: BaseException) -> str:
    """The error as a traceback shows it, every exception it came from included, and their arguments."""
    shown = ["".join(traceback.format_exception(type(error), error, error.__traceback__))]
    seen: set[int] = set()
    todo: list[BaseException] = [error]
    while todo:  # a chain may loop back on itself
        linked = todo.pop()
        if id(linked) not in seen:
            seen.add(id(linked))
            shown.append(f"{linked!s} {linked.args!r}")
            todo += [x for x in (linked.__cause__, linked.__context__) if x is not None]
    return "\n".join(shown)


async def test_an_accepted_answer_echoing_the_token_leaks_it_nowhere() -> None:
    """Request ids, messages, reports and spans show *** where a 202 echoed the token (the rest of the id kept)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with serve(accepted_echoing) as server:
        async with BoxClient(
            DeveloperTokenAuth(API_TOKEN), base_url=server.url, rate_limit=None, retry=RETRY, tracer_provider=provider
        ) as client:
            report = await asyncio.wait_for(client.session_termination.terminate(user_ids=["1", "2"]), BOUND)
            message = await asyncio.wait_for(client.session_termination.terminate_users_sessions(user_ids=["3"]), BOUND)
    assert server.count() == 2
    assert report.terminated_count == 2
    assert message.request_id == "echo-***"
    assert message.message == "Request is successful for ***"
    assert [entry["request_id"] for entry in report.to_dict()["accepted"]] == ["echo-***"]
    spans = [dict(span.attributes or {}) for span in exporter.get_finished_spans()]
    assert [span.get("box_sessions.request_id") for span in spans if "http.response.status_code" in span] == [
        "echo-***",
        "echo-***",
    ]
    for where, text in {
        "report": json.dumps(report.to_dict()),
        "str(report)": str(report),
        "message": repr(message),
        "spans": repr(spans),
    }.items():
        assert leaked(text, {API_TOKEN}) is None, where


@pytest.mark.parametrize("where", ["api", "token"])
async def test_a_malformed_answer_echoing_a_secret_leaks_it_nowhere(where: str, private_key: str) -> None:
    """The HTTP library's error quotes the echoed line: the BoxConnectionError, its chain and the report show ***."""
    auth = DeveloperTokenAuth(API_TOKEN) if where == "api" else auth_of_kind("ccg", private_key=private_key)
    secret = API_TOKEN if where == "api" else SECRET
    with serve(malformed_echo) as server:
        async with BoxClient(auth, base_url=server.url, rate_limit=None, retry=RETRY) as client:
            with pytest.raises(BoxConnectionError) as raised:
                await asyncio.wait_for(client.session_termination.terminate_users_sessions(user_ids=["1"]), BOUND)
            report = await asyncio.wait_for(client.session_termination.terminate(user_ids=["1", "2"]), BOUND)
    assert server.count(TOKEN if where == "token" else "/2.0/users/terminate_sessions") >= 2
    assert "x-echo ***" in str(raised.value)  # the quoted line is kept, scrubbed
    assert len(report.failed) == 2
    for name, text in {
        "str": str(raised.value),
        "repr": repr(raised.value),
        "chain": chain_of(raised.value),
        "report": json.dumps(report.to_dict()),
        "str(report)": str(report),
    }.items():
        assert leaked(text, {secret}) is None, name


@pytest.mark.parametrize("auth_kind", ["ccg", "oauth2"])
async def test_a_token_answer_without_a_token_keeps_no_echoed_secret_in_its_headers(
    auth_kind: str, private_key: str
) -> None:
    """A 200 without an access_token, whose headers quote the form's secrets: AuthenticationError's headers show ***."""

    def handler(request: Request) -> Answer:
        form = request.form()
        secret = form.get("refresh_token", form["client_secret"])
        return Answer(
            200,
            b'{"token_type": "bearer"}',
            {"content-type": "application/json", "x-echo": secret, "location": f"https://evil.example/?s={secret}"},
        )

    with serve(handler) as server:
        async with BoxClient(
            auth_of_kind(auth_kind, private_key=private_key), base_url=server.url, rate_limit=None, retry=RETRY
        ) as client:
            with pytest.raises(AuthenticationError) as raised:
                await asyncio.wait_for(client.session_termination.terminate_users_sessions(user_ids=["1"]), BOUND)
        secrets = secrets_sent(server)
    assert "without an access_token" in str(raised.value)
    assert raised.value.headers["x-echo"] == "***"
    assert leaked(repr(raised.value.headers), secrets) is None
    assert leaked(chain_of(raised.value), secrets) is None


def test_an_accepted_answer_echoing_the_token_leaks_it_nowhere_on_the_command_line(tmp_path: Path) -> None:
    """box-sessions terminate: the report's request ids show ***, and no file or stream shows the developer token."""
    report, journal = tmp_path / "report.jsonl", tmp_path / "journal.sqlite"
    with serve(accepted_echoing) as server:
        run = run_terminate(server, report, journal, BOX_DEVELOPER_TOKEN=API_TOKEN)
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    assert [line["request_id"] for line in lines] == ["echo-***", "echo-***"]
    assert leaked(report.read_text(), {API_TOKEN}) is None
    assert leaked(journal.read_bytes().decode("latin-1"), {API_TOKEN}) is None
    assert leaked(run.stdout + run.stderr, {API_TOKEN}) is None
