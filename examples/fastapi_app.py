"""One BoxClient for a whole FastAPI app: opened in the lifespan, shared by every request.

Run it (credentials from the environment, as the command line reads them)::

    BOX_CLIENT_ID=... BOX_CLIENT_SECRET=... BOX_ENTERPRISE_ID=... uvicorn examples.fastapi_app:app

``BOX_BASE_URL`` sends it to another API host, such as a fake Box on 127.0.0.1
(``box-sessions fake-server``); Box's own by default. A credential that is not set stops the app
at startup with one sentence naming it.

Sharing one client is what makes the SDK's guarantees hold across requests: one connection pool,
one token refreshed once for everybody, one rate limiter and one 429 cool-down for the app.

Several workers are several processes, each with its own client. Set ``BOX_REDIS_URL`` and they
share through Redis what one client shares in a process (the ``redis`` extra: ``pip install ".[redis]"``
in a checkout, ``"box-sessions[redis]"`` once it is published)::

    BOX_REDIS_URL=redis://127.0.0.1:6379/0 ... uvicorn examples.fastapi_app:app --workers 4

One token for every worker, one rate limit for the app (Box's limit is the service account's,
whatever the number of workers), and a 429 one worker sees holds them all back. Without it, four
workers send four times the rate. Redis is imported only when ``BOX_REDIS_URL`` is set: without
it the app needs no ``redis`` extra, and with it but no extra the app stops at startup with one
sentence saying how to install it.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

import box_sessions

if TYPE_CHECKING:  # imported at run time only when BOX_REDIS_URL is set: see share_from_env
    from box_sessions.redis import RedisShare

BOX_API = "https://api.box.com"
CREDENTIALS = ("BOX_CLIENT_ID", "BOX_CLIENT_SECRET", "BOX_ENTERPRISE_ID")


class TerminateRequest(BaseModel):
    """The ids whose sessions to end; any of the three lists may be empty.

    Strict types: JSON ``true`` or ``1.0`` is a 422, never user ``1``; an unknown key (a typo
    such as ``userids``) is a 422 too, rather than a request that terminates nobody.
    """

    model_config = ConfigDict(extra="forbid")

    user_ids: list[StrictStr | StrictInt] = Field(default_factory=list)
    user_logins: list[StrictStr] = Field(default_factory=list)
    group_ids: list[StrictStr | StrictInt] = Field(default_factory=list)


def share_from_env() -> RedisShare | None:
    """The Redis share of every worker, from BOX_REDIS_URL; ``None`` when it is not set (one process).

    Redis is imported only when the variable is set, so the app runs without the ``redis`` extra.

    Raises:
        RuntimeError: BOX_REDIS_URL is set and the ``redis`` extra is not installed; the message
            says how to install it.
    """
    url = os.environ.get("BOX_REDIS_URL", "").strip()
    if not url:
        return None
    try:
        from box_sessions.redis import RedisShare  # noqa: PLC0415 - only an app that shares through Redis needs it
    except ModuleNotFoundError as missing:
        if (missing.name or "").partition(".")[0] != "redis":
            raise
        raise RuntimeError(
            "cannot start: BOX_REDIS_URL is set but the redis extra is not installed "
            '(pip install ".[redis]" in a checkout of box_sessions, "box-sessions[redis]" once it is published)'
        ) from None
    return RedisShare(url)


def client_from_env(shared: box_sessions.Shared | None = None) -> box_sessions.BoxClient:
    """A BoxClient with CCG credentials from BOX_CLIENT_ID, BOX_CLIENT_SECRET and BOX_ENTERPRISE_ID.

    The API host is BOX_BASE_URL, Box's own when it is not set.

    Args:
        shared: What the app's workers share (`share_from_env`), or ``None``.

    Raises:
        RuntimeError: A credential is not set; the message names it.
    """
    missing = [name for name in CREDENTIALS if not os.environ.get(name, "").strip()]
    if missing:
        raise RuntimeError(
            f"cannot start: set {', '.join(missing)} (the app reads its Box credentials from "
            f"{', '.join(CREDENTIALS)} in the environment)"
        )
    auth = box_sessions.CCGAuth(
        client_id=os.environ["BOX_CLIENT_ID"],
        client_secret=os.environ["BOX_CLIENT_SECRET"],
        enterprise_id=os.environ["BOX_ENTERPRISE_ID"],
    )
    return box_sessions.BoxClient(auth, base_url=os.environ.get("BOX_BASE_URL") or BOX_API, shared=shared)


def create_app(
    make_client: Callable[[box_sessions.Shared | None], box_sessions.BoxClient] = client_from_env,
    make_share: Callable[[], RedisShare | None] = share_from_env,
) -> FastAPI:
    """Build the app; the share and the client are made at startup, so tests pass factories wired to FakeBox."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as closing:
            share = make_share()
            if share is not None:
                await closing.enter_async_context(share)  # closed after the client
            app.state.box = await closing.enter_async_context(make_client(share))
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


# Built on import, whatever the environment: credentials are read at startup, where a missing one
# fails with its name rather than leaving uvicorn without an ``app`` to find.
app = create_app()
