"""The FastAPI example, driven through httpx.ASGITransport against FakeBox."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from box_sessions.testing import FakeBox

pytest.importorskip("fastapi")


def load_example() -> ModuleType:
    path = Path(__file__).parent.parent / "examples" / "fastapi_app.py"
    spec = importlib.util.spec_from_file_location("fastapi_app", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_app_shares_one_client_and_returns_the_report() -> None:
    """Requests share the lifespan's BoxClient (one token) and get the report as JSON."""
    fake = FakeBox(users=["1", "2"])
    made = 0

    def make_client() -> object:
        nonlocal made
        made += 1
        from box_sessions import CCGAuth  # noqa: PLC0415 - kept by its one use

        return fake.client(CCGAuth(client_id=fake.client_id, client_secret=fake.client_secret, enterprise_id="1"))

    app = load_example().create_app(make_client)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
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
