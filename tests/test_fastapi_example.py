"""The FastAPI example, driven through httpx.ASGITransport against FakeBox."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import respx

from box_sessions import BoxClient, CCGAuth
from box_sessions.testing import FakeBox

from .conftest import GROUPS_URL, TOKEN_URL, accepted, token_answer

pytest.importorskip("fastapi")

ENVIRONMENT = ("BOX_CLIENT_ID", "BOX_CLIENT_SECRET", "BOX_ENTERPRISE_ID", "BOX_BASE_URL", "BOX_REDIS_URL")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sets the example's environment variables it needs; none leak in from outside."""
    for name in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The example imported fresh, registered in sys.modules as uvicorn's import would (pydantic needs it)."""
    path = Path(__file__).parent.parent / "examples" / "fastapi_app.py"
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
async def running(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The app through its lifespan, with an httpx client talking to it in-process."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
            yield http


def fake_client_factory(fake: FakeBox) -> Callable[[object], BoxClient]:
    def make_client(shared: object = None) -> BoxClient:
        assert shared is None  # BOX_REDIS_URL is not set in these tests
        return fake.client(CCGAuth(client_id=fake.client_id, client_secret=fake.client_secret, enterprise_id="1"))

    return make_client


async def test_app_shares_one_client_and_returns_the_report(example: ModuleType) -> None:
    """Requests share the lifespan's BoxClient (one token) and get the report as JSON."""
    fake = FakeBox(users=["1", "2"])
    made = 0

    def make_client(shared: object) -> object:
        nonlocal made
        made += 1
        return fake_client_factory(fake)(shared)

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


async def test_base_url_defaults_to_boxs(
    example: ModuleType, monkeypatch: pytest.MonkeyPatch, respx_mock: respx.MockRouter
) -> None:
    """Without BOX_BASE_URL, the app's token and termination requests go to https://api.box.com."""
    token = respx_mock.post(TOKEN_URL).mock(return_value=token_answer())
    groups = respx_mock.post(GROUPS_URL).mock(return_value=accepted())
    fake_credentials(monkeypatch, FakeBox())
    async with running(example.app) as http:
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
