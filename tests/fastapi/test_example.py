"""The FastAPI example, driven through httpx.ASGITransport against FakeBox: its guard, audit line and reports."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from box_sessions import BoxClient, CCGAuth
from box_sessions.testing import FakeBox

from ..conftest import GROUPS_URL, TOKEN_URL, accepted, token_answer
from ..support.routes import Routes

pytest.importorskip("fastapi")

ENVIRONMENT = ("BOX_CLIENT_ID", "BOX_CLIENT_SECRET", "BOX_ENTERPRISE_ID", "BOX_BASE_URL", "BOX_REDIS_URL")
#: The callers' keys the app accepts in these tests (conftest's SECRETS knows their shape).
KEY, OTHER_KEY = "terminate-key-a1b2c3d4e5", "terminate-key-f6e7d8c9b0"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sets the example's environment variables it needs; none leak in; the app accepts KEY."""
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TERMINATE_API_KEYS", KEY)


@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The example imported fresh, registered in sys.modules as uvicorn's import would (pydantic needs it)."""
    path = Path(__file__).resolve().parents[2] / "examples" / "fastapi_app.py"
    spec = importlib.util.spec_from_file_location("fastapi_app", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


def fake_credentials(monkeypatch: pytest.MonkeyPatch, fake: FakeBox) -> None:
    monkeypatch.setenv("BOX_CLIENT_ID", fake.client_id)
    monkeypatch.setenv("BOX_CLIENT_SECRET", fake.client_secret)
    monkeypatch.setenv("BOX_ENTERPRISE_ID", "1")


@asynccontextmanager
async def running(app: Any, key: str | None = KEY) -> AsyncIterator[httpx.AsyncClient]:
    """The app through its lifespan, with an httpx client talking to it in-process, sending ``key``."""
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app", headers=headers) as http:
            yield http


def fake_client_factory(fake: FakeBox) -> Callable[[object, Any], BoxClient]:
    def make_client(shared: object = None, telemetry: Any = None) -> BoxClient:
        assert shared is None  # BOX_REDIS_URL is not set in these tests
        auth = CCGAuth(client_id=fake.client_id, client_secret=fake.client_secret, enterprise_id="1")
        providers = (
            {}
            if telemetry is None
            else {
                "tracer_provider": telemetry.tracer_provider,
                "meter_provider": telemetry.meter_provider,
            }
        )
        return fake.client(auth, **providers)

    return make_client


async def test_app_shares_one_client_and_returns_the_report(example: ModuleType) -> None:
    """Requests share the lifespan's BoxClient (one token) and get the report as JSON."""
    fake = FakeBox(users=["1", "2"])
    made = 0

    def make_client(shared: object, telemetry: Any) -> object:
        nonlocal made
        made += 1
        return fake_client_factory(fake)(shared, telemetry)

    app = example.create_app(make_client)
    async with running(app) as http:
        first = await http.post("/terminate", json={"user_ids": ["1", 2], "group_ids": ["9"]})
        second = await http.post("/terminate", json={"user_ids": ["3"], "user_logins": ["bad"]})
        box = app.state.box
    assert first.status_code == 200
    assert first.json()["ok"] is True
    assert first.json()["terminated"] == {"user_ids": ["1", "2"], "user_logins": [], "group_ids": ["9"]}
    report = second.json()
    assert report["ok"] is False
    assert {f["value"]: f["error_type"] for f in report["failed"]} == {"3": "NotFoundError", "bad": "ValueError"}
    assert made == 1
    assert fake.token_requests == 1  # one token for the whole app
    assert box.is_closed  # closed with the app


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"user_ids": [True]}, id="true-user-id"),
        pytest.param({"user_ids": [False]}, id="false-user-id"),
        pytest.param({"user_ids": [1.0]}, id="float-user-id"),
        pytest.param({"group_ids": [2.5]}, id="float-group-id"),
        pytest.param({"group_ids": [True]}, id="true-group-id"),
        pytest.param({"user_logins": [1]}, id="int-login"),
        pytest.param({"user_ids": "1"}, id="string-not-list"),
        pytest.param({"userids": ["1"]}, id="unknown-key"),
    ],
)
async def test_body_pydantic_would_coerce_is_422(example: ModuleType, body: dict[str, Any]) -> None:
    """Booleans, floats, a bare string or an unknown key are a 422: nothing is sent to Box (true is not user 1)."""
    fake = FakeBox()
    app = example.create_app(fake_client_factory(fake))
    async with running(app) as http:
        response = await http.post("/terminate", json=body)
    assert response.status_code == 422
    assert fake.api_requests() == []
    assert fake.terminated_count == 0


async def test_base_url_comes_from_the_environment(example: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    """With BOX_BASE_URL set, the module's own app gets its token and terminates at that host."""
    fake = FakeBox()
    fake_credentials(monkeypatch, fake)
    async with fake.serve() as base_url:
        monkeypatch.setenv("BOX_BASE_URL", base_url)
        async with running(example.app) as http:
            response = await http.post("/terminate", json={"group_ids": ["7"]})
    assert response.status_code == 200
    assert response.json()["ok"] is True
    assert fake.token_requests == 1
    assert fake.terminated["group_ids"] == ["7"]


async def test_base_url_defaults_to_boxs(example: ModuleType, monkeypatch: pytest.MonkeyPatch, routes: Routes) -> None:
    """Without BOX_BASE_URL, the app's token and termination requests go to https://api.box.com."""
    token = routes.post(TOKEN_URL).mock(return_value=token_answer())
    groups = routes.post(GROUPS_URL).mock(return_value=accepted())

    class Routed(BoxClient):
        """The BoxClient the module's own app builds, with its own base URL, sending through the routes."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, transport=routes.transport, **kwargs)

    # The module's app builds its client at startup from box_sessions.BoxClient: that class, for
    # this test only, is one whose requests the routes answer, under either HTTP stack.
    monkeypatch.setattr(example.box_sessions, "BoxClient", Routed)
    fake_credentials(monkeypatch, FakeBox())
    async with running(example.app) as http:
        assert isinstance(example.app.state.box, Routed)  # nothing can leave for the real Box
        response = await http.post("/terminate", json={"group_ids": ["7"]})
    assert response.status_code == 200
    assert token.call_count == 1
    assert groups.call_count == 1


def test_module_builds_app_without_credentials(example: ModuleType) -> None:
    """Imported with no credentials set, the module still has an ``app`` for uvicorn to find."""
    assert example.app.title == "Session termination"


@pytest.mark.parametrize(
    ("unset", "value"),
    [
        pytest.param(("BOX_CLIENT_SECRET",), None, id="secret-missing"),
        pytest.param(("BOX_CLIENT_ID",), "", id="client-id-empty"),
        pytest.param(("BOX_CLIENT_ID", "BOX_CLIENT_SECRET", "BOX_ENTERPRISE_ID"), None, id="all-missing"),
    ],
)
async def test_missing_credential_stops_startup_with_one_sentence(
    example: ModuleType, monkeypatch: pytest.MonkeyPatch, unset: tuple[str, ...], value: str | None
) -> None:
    """A credential that is unset or empty fails the app's startup with one sentence that names it."""
    fake_credentials(monkeypatch, FakeBox())
    for name in unset:
        if value is None:
            monkeypatch.delenv(name)
        else:
            monkeypatch.setenv(name, value)
    app = example.app
    with pytest.raises(RuntimeError) as raised:
        async with app.router.lifespan_context(app):
            pass
    assert str(raised.value) == (
        f"cannot start: set {', '.join(unset)} (the app reads its Box credentials from "
        "BOX_CLIENT_ID, BOX_CLIENT_SECRET, BOX_ENTERPRISE_ID in the environment)"
    )


def audit_records(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The audit lines the app wrote, parsed."""
    return [json.loads(r.getMessage()) for r in caplog.get_records("call") if r.name == "box_sessions.audit"]


def fingerprint(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:12]


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(None, id="no-header"),
        pytest.param("", id="empty"),
        pytest.param("Bearer", id="scheme-only"),
        pytest.param("Bearer ", id="scheme-and-space"),
        pytest.param(KEY, id="key-without-scheme"),
        pytest.param(f"Basic {KEY}", id="basic-scheme"),
        pytest.param("Bearer terminate-key-wrong00000", id="wrong-key"),
        pytest.param(f"Bearer {KEY[:-1]}", id="key-one-short"),
        pytest.param(f"Bearer {KEY}0", id="key-one-long"),
        pytest.param(f"Bearer {KEY},{OTHER_KEY}", id="the-whole-list"),
    ],
)
async def test_a_missing_malformed_or_wrong_key_is_401_and_nothing_is_sent(
    example: ModuleType, authorization: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    """Without ``Authorization: Bearer <an accepted key>`` the answer is 401 with WWW-Authenticate; Box sees nothing."""
    fake = FakeBox(users=["1"])
    app = example.create_app(fake_client_factory(fake))
    async with running(app, key=None) as http:
        headers = {} if authorization is None else {"Authorization": authorization}
        response = await http.post("/terminate", json={"user_ids": ["1"]}, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert fake.requests == []
    assert audit_records(caplog) == []


async def test_the_guard_answers_before_the_body_is_validated(example: ModuleType) -> None:
    """Without a key, a body that would be a 422 is a 401: a caller without a key learns nothing of the API."""
    fake = FakeBox()
    app = example.create_app(fake_client_factory(fake))
    async with running(app, key=None) as http:
        response = await http.post("/terminate", json={"user_ids": [True]})
    assert response.status_code == 401
    assert fake.requests == []


async def test_keys_are_a_comma_separated_list_with_white_space_and_empty_entries_ignored(
    example: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TERMINATE_API_KEYS=" KEY , ,OTHER_KEY, " accepts KEY and OTHER_KEY, and nothing else (not the empty key)."""
    monkeypatch.setenv("TERMINATE_API_KEYS", f" {KEY} , ,{OTHER_KEY}, ")
    app = example.create_app(fake_client_factory(FakeBox()))
    statuses = {}
    for key in (KEY, OTHER_KEY, "", f" {KEY} "):
        async with running(app, key=key) as http:
            statuses[key] = (await http.post("/terminate", json={"group_ids": ["7"]})).status_code
    # White space around the key in the header is not part of the key.
    assert statuses == {KEY: 200, OTHER_KEY: 200, "": 401, f" {KEY} ": 200}


async def test_every_configured_key_is_compared_whichever_matches(
    example: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With three keys and the first one sent, all three are compared (constant time: no early exit)."""
    monkeypatch.setenv("TERMINATE_API_KEYS", f"{KEY},{OTHER_KEY},terminate-key-third00000")
    compared: list[tuple[bytes, bytes]] = []
    real = example.hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return bool(real(a, b))

    monkeypatch.setattr(example.hmac, "compare_digest", counting)
    app = example.create_app(fake_client_factory(FakeBox()))
    async with running(app, key=KEY) as http:
        response = await http.post("/terminate", json={"group_ids": ["7"]})
    assert response.status_code == 200
    assert len(compared) == 3
    assert {b for _, b in compared} == {
        hashlib.sha256(k.encode()).digest() for k in (KEY, OTHER_KEY, "terminate-key-third00000")
    }


async def test_an_accepted_request_writes_one_audit_line_with_the_fingerprint_counts_and_request_ids(
    example: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    """One line per accepted request: the key's fingerprint (never the key), the counts, the failures' request ids."""
    fake = FakeBox(users=["1", "2"])
    app = example.create_app(fake_client_factory(fake))
    async with running(app, key=KEY) as http:
        response = await http.post("/terminate", json={"user_ids": ["1", "2", "1", "3"], "user_logins": ["bad"]})
    report = response.json()
    request_ids = [failure["request_id"] for failure in report["failed"] if failure.get("request_id")]
    assert len(request_ids) == 1  # user 3, unknown to Box; the bad login failed before anything was sent
    assert audit_records(caplog) == [
        {
            "key_fingerprint": fingerprint(KEY),
            "inputs": 5,
            "terminated": 2,
            "failed": 2,
            "duplicates": 1,
            "requests": report["requests"],
            "accepted_request_ids": [accepted["request_id"] for accepted in report["accepted"]],
            "failed_request_ids": request_ids,
        }
    ]
    assert len(report["accepted"]) >= 1
    assert report["requests"] >= 2
    audit_messages = [r.getMessage() for r in caplog.get_records("call") if r.name == "box_sessions.audit"]
    assert KEY not in audit_messages[0]


@pytest.mark.parametrize("value", [None, "", " , ,"], ids=["unset", "empty", "only-commas-and-spaces"])
async def test_without_an_api_key_the_app_does_not_start(
    example: ModuleType, monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    """No key in TERMINATE_API_KEYS stops startup with one sentence naming it, before any client is made."""
    if value is None:
        monkeypatch.delenv("TERMINATE_API_KEYS")
    else:
        monkeypatch.setenv("TERMINATE_API_KEYS", value)
    made: list[object] = []
    app = example.create_app(made.append)
    with pytest.raises(RuntimeError) as raised:
        async with app.router.lifespan_context(app):
            pass
    assert str(raised.value) == (
        "cannot start: set TERMINATE_API_KEYS to the callers' API keys, comma-separated "
        "(POST /terminate serves only requests with Authorization: Bearer <one of them>)"
    )
    assert made == []


async def test_metrics_are_served_in_prometheus_text_format(example: ModuleType) -> None:
    """GET /metrics: the client's measurements as Prometheus reads them, counting what the request did."""
    fake = FakeBox(users=["1", "2"])
    app = example.create_app(fake_client_factory(fake))
    async with running(app, key=KEY) as http:
        await http.post("/terminate", json={"user_ids": ["1", "2", "3"]})
        response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'box_sessions_ids_total{outcome="terminated"} 2' in text
    assert 'box_sessions_ids_total{outcome="failed"} 1' in text
    assert "box_sessions_token_requests_total 1" in text
    requests = len(fake.requests) - fake.token_requests
    count = sum(
        int(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("http_client_request_duration_seconds_count")
    )
    assert count == len(fake.requests)  # the token request's duration included
    assert requests >= 2
    assert "# TYPE http_client_request_duration_seconds histogram" in text
