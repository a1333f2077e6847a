"""Where OAuth 2.0 token pairs live between refreshes: the `TokenStore` protocol and two stores."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import attrs

from .._errors import BoxError

__all__ = ["InMemoryTokenStore", "JSONFileTokenStore", "OAuth2Tokens", "TokenStore"]


@attrs.frozen(kw_only=True)
class OAuth2Tokens:
    """An OAuth 2.0 token pair as a store keeps it.

    Attributes:
        access_token: The access token (``None`` when only a refresh token is known).
        refresh_token: The refresh token: it works once; Box sends a new one with every refresh.
        expires_at: Wall-clock Unix time when the access token expires, if known.
    """

    access_token: str | None = attrs.field(default=None, repr=False)
    refresh_token: str = attrs.field(repr=False)
    expires_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The pair as a JSON-ready dict."""
        return {"access_token": self.access_token, "refresh_token": self.refresh_token, "expires_at": self.expires_at}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OAuth2Tokens:
        """The pair from what `to_json` gave.

        Raises:
            ValueError: there is no refresh token.
        """
        refresh = data.get("refresh_token")
        if not isinstance(refresh, str) or not refresh:
            raise ValueError("stored tokens have no refresh_token")
        access = data.get("access_token")
        expires = data.get("expires_at")
        return cls(
            access_token=access if isinstance(access, str) and access else None,
            refresh_token=refresh,
            expires_at=float(expires) if isinstance(expires, (int, float)) and not isinstance(expires, bool) else None,
        )


@runtime_checkable
class TokenStore(Protocol):
    """Where `OAuth2Auth` keeps its tokens between refreshes and runs (e.g. your database).

    ``save`` is awaited with the new pair before the new access token is used, so a crash never
    leaves only a spent refresh token behind.
    """

    async def load(self) -> OAuth2Tokens | None:
        """The saved tokens, or ``None`` when nothing is saved yet."""
        ...

    async def save(self, tokens: OAuth2Tokens) -> None:
        """Save ``tokens``, replacing what was saved."""
        ...


class InMemoryTokenStore:
    """Keeps the tokens in memory only (the default): they are gone when the process ends."""

    def __init__(self) -> None:
        self._tokens: OAuth2Tokens | None = None

    async def load(self) -> OAuth2Tokens | None:
        return self._tokens

    async def save(self, tokens: OAuth2Tokens) -> None:
        self._tokens = tokens

    def __repr__(self) -> str:
        return "InMemoryTokenStore()"


class JSONFileTokenStore:
    """Keeps the tokens in a JSON file readable by its owner only (0600), replaced atomically.

    A new file is written next to the old one and renamed over it, so a crash mid-write leaves
    the previous tokens intact.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    async def load(self) -> OAuth2Tokens | None:
        return await asyncio.to_thread(self._load)

    async def save(self, tokens: OAuth2Tokens) -> None:
        await asyncio.to_thread(self._save, tokens)

    def _load(self) -> OAuth2Tokens | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise BoxError(f"cannot read the token file {str(self.path)!r}: {type(exc).__name__}") from None
        try:
            return OAuth2Tokens.from_json(data if isinstance(data, dict) else {})
        except ValueError as exc:
            raise BoxError(f"the token file {str(self.path)!r} is not usable: {exc}") from None

    def _save(self, tokens: OAuth2Tokens) -> None:
        directory = self.path.parent
        fd, temp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=directory)  # created 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(tokens.to_json(), f)
                f.flush()
                os.fsync(f.fileno())
            Path(temp).replace(self.path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise

    def __repr__(self) -> str:
        return f"JSONFileTokenStore({str(self.path)!r})"
