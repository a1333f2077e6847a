"""One BoxClient for a whole FastAPI app: opened in the lifespan, shared by every request.

Run it (credentials from the environment, as the command line reads them)::

    BOX_CLIENT_ID=... BOX_CLIENT_SECRET=... BOX_ENTERPRISE_ID=... uvicorn examples.fastapi_app:app

Sharing one client is what makes the SDK's guarantees hold across requests: one connection pool,
one token refreshed once for everybody, one rate limiter and one 429 cool-down for the app.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from pydantic import BaseModel, Field

import box_sessions


class TerminateRequest(BaseModel):
    """The ids whose sessions to end; any of the three lists may be empty."""

    user_ids: list[str | int] = Field(default_factory=list)
    user_logins: list[str] = Field(default_factory=list)
    group_ids: list[str | int] = Field(default_factory=list)


def client_from_env() -> box_sessions.BoxClient:
    """A BoxClient with CCG credentials from BOX_CLIENT_ID, BOX_CLIENT_SECRET and BOX_ENTERPRISE_ID."""
    auth = box_sessions.CCGAuth(
        client_id=os.environ["BOX_CLIENT_ID"],
        client_secret=os.environ["BOX_CLIENT_SECRET"],
        enterprise_id=os.environ["BOX_ENTERPRISE_ID"],
    )
    return box_sessions.BoxClient(auth)


def create_app(make_client: Callable[[], box_sessions.BoxClient] = client_from_env) -> FastAPI:
    """Build the app; tests pass a factory of clients wired to FakeBox."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with make_client() as client:
            app.state.box = client
            yield

    app = FastAPI(title="Session termination", lifespan=lifespan)

    @app.post("/terminate")
    async def terminate(body: TerminateRequest, request: Request) -> dict[str, Any]:
        """Terminate the given users' and groups' sessions; the report accounts for every id."""
        client: box_sessions.BoxClient = request.app.state.box
        report = await client.session_termination.terminate(
            user_ids=body.user_ids, user_logins=body.user_logins, group_ids=body.group_ids
        )
        return report.to_dict()

    return app


if os.environ.get("BOX_CLIENT_ID"):  # pragma: no cover - only when run with real credentials
    app = create_app()
