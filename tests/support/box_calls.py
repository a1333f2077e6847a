"""What the Redis tests do with Box and what they count: auth for a FakeBox, bounded calls, outcomes, log lines.

Everything here goes through the public API: `box_sessions.BoxClient`, the auth classes and
`box_sessions.testing.FakeBox`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

import pytest

from box_sessions import AuthenticationError, BoxClient, CCGAuth, OAuth2Auth, TokenStore
from box_sessions.testing import FakeBox, Reply, Request

#: Generous bound for one call to Box, or any wait on a loopback server.
BOUND = 30.0
#: What a call of a live process may end in while Redis loses or refuses state (issue 17's promise).
ALLOWED_OUTCOMES = frozenset({"ok", "AuthenticationError(token_store_unavailable)"})


def ccg(fake: FakeBox, subject: str = "42") -> CCGAuth:
    """CCG credentials FakeBox accepts, for enterprise ``subject``."""
    return CCGAuth(client_id=fake.client_id, client_secret=fake.client_secret, enterprise_id=subject)


def oauth2(fake: FakeBox, store: TokenStore, *, refresh_token: str | None = None) -> OAuth2Auth:
    """OAuth 2.0 with FakeBox's app credentials, keeping its pair in ``store`` (seeded with ``refresh_token``)."""
    return OAuth2Auth(
        client_id=fake.client_id, client_secret=fake.client_secret, refresh_token=refresh_token, token_store=store
    )


async def terminate(client: BoxClient, user: str = "1") -> None:
    """One call to Box (terminate one user's sessions), bounded by `BOUND`."""
    await asyncio.wait_for(client.session_termination.terminate_users_sessions([user]), BOUND)


async def outcome(call: Awaitable[object]) -> str:
    """How ``call`` ended: ``"ok"``, ``"AuthenticationError({code})"``, or ``"{type}: {message}"`` of anything else."""
    try:
        await asyncio.wait_for(call, BOUND)
    except AuthenticationError as exc:
        return f"AuthenticationError({exc.code})"
    except Exception as exc:  # noqa: BLE001 - any other failure is the outcome, reported to the test
        return f"{type(exc).__name__}: {exc}"
    return "ok"


def spent_refresh_tokens_sent(fake: FakeBox) -> int:
    """Refresh requests FakeBox refused with ``invalid_grant``: a refresh token it had already spent.

    With FakeBox's own credentials that is the only 400 its token endpoint answers a refresh, and
    in real Box the user would be logged out. (`FakeBox.spent_refresh_tokens` counts refresh
    tokens Box spent, i.e. good refreshes, not these.)
    """
    return sum(1 for r in fake.requests if r.path.startswith("/oauth2/token") and r.status == 400)


def box_log(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    """The ``box_sessions`` logger's messages at exactly ``level``, in every phase of the test so far."""
    records = [*caplog.get_records("setup"), *caplog.get_records("call")]
    return [r.getMessage() for r in records if r.name == "box_sessions" and r.levelno == level]


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The ``box_sessions`` WARNING lines so far."""
    return box_log(caplog, logging.WARNING)


def answers_again(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The ``box_sessions`` lines saying the share is back (it "takes writes again", or "answers again")."""
    return [m for m in box_log(caplog, logging.INFO) if "answers again" in m or "takes writes again" in m]


class HeldRefresh:
    """A FakeBox handler that, when armed, holds its next token answer after FakeBox handled it.

    FakeBox spends the refresh token on receipt, as Box does: while the answer is held, the old
    refresh token is spent and the new pair exists only in the answer. A test does what it wants
    to Redis meanwhile (restart it, flush it), then releases the answer.

    Args:
        fake: The FakeBox that answers.
    """

    def __init__(self, fake: FakeBox) -> None:
        self.fake = fake
        self.arrived = asyncio.Event()
        self._release = asyncio.Event()
        self._armed = False

    def arm(self) -> None:
        """Hold the next token answer."""
        self._armed = True
        self.arrived.clear()
        self._release.clear()

    def release(self) -> None:
        """Send the held answer."""
        self._release.set()

    async def handle(self, request: Request) -> Reply:
        """The loopback server's handler."""
        reply = await self.fake.handle(request)
        if self._armed and request.path.startswith("/oauth2/token"):
            self._armed = False
            self.arrived.set()
            await asyncio.wait_for(self._release.wait(), BOUND)
        return reply
