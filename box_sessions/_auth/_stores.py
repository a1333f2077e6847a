"""Where OAuth 2.0 token pairs live between refreshes: the `TokenStore` protocols and two stores.

A store that several processes use has a lock (`LockingTokenStore`): `OAuth2Auth` holds it across
load, refresh and save, so one process refreshes and the next reads what it saved.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import attrs

from .._errors import BoxError, BoxTimeoutError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: the file store locks within the process only
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "FILE_LOCK_WAIT",
    "InMemoryTokenStore",
    "JSONFileTokenStore",
    "LockingTokenStore",
    "OAuth2Tokens",
    "TokenStore",
]

#: The longest `JSONFileTokenStore.lock` waits for another process's refresh, by default.
FILE_LOCK_WAIT = 60.0
# Seconds between tries of a lock file another process holds.
_FILE_LOCK_POLL = 0.05


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

    @property
    def key(self) -> str | None:
        """Names the Box user whose pair this is (e.g. ``"user-42"``), or ``None``.

        Processes whose stores name one key act for one Box user: with a share that paces, they
        pace together (`OAuth2Auth.identity`). ``None`` leaves each process pacing on its own.
        """
        ...

    async def load(self) -> OAuth2Tokens | None:
        """The saved tokens, or ``None`` when nothing is saved yet."""
        ...

    async def save(self, tokens: OAuth2Tokens) -> None:
        """Save ``tokens``, replacing what was saved."""
        ...


@runtime_checkable
class LockingTokenStore(TokenStore, Protocol):
    """A `TokenStore` that several processes share, with a lock `OAuth2Auth` holds across a refresh.

    Box's refresh tokens work once: two processes refreshing with the same one would log the user
    out. `OAuth2Auth` holds ``lock()`` across load, refresh and save, so the next holder reads
    what the last one saved. A store without ``lock`` is used by one process only.
    """

    def lock(self) -> contextlib.AbstractAsyncContextManager[None]:
        """An async context manager holding the store's lock, shared by every process that uses it.

        It must free itself if its holder dies (a lock with a time to live, a file lock the
        system frees with the process), and must not free itself while its holder lives.

        Raises:
            SharedStateError: the shared state behind the lock could not be reached; `OAuth2Auth`
                then refuses to refresh.
            BoxTimeoutError: another process held the lock longer than the store waits.
        """
        ...


class InMemoryTokenStore:
    """Keeps the tokens in memory only (the default): they are gone when the process ends."""

    def __init__(self) -> None:
        self._tokens: OAuth2Tokens | None = None

    @property
    def key(self) -> None:
        """``None``: one process's memory names no user."""
        return None

    async def load(self) -> OAuth2Tokens | None:
        return self._tokens

    async def save(self, tokens: OAuth2Tokens) -> None:
        self._tokens = tokens

    def __repr__(self) -> str:
        return "InMemoryTokenStore()"


class JSONFileTokenStore:
    """Keeps the tokens in a JSON file readable by its owner only (0600), replaced atomically.

    A new file is written next to the old one and renamed over it, so a crash mid-write leaves
    the previous tokens intact. `lock` takes an exclusive ``flock`` on a lock file beside it
    (``<path>.lock``, 0600), so that processes on one machine sharing the file refresh one at a
    time; the system frees it when its holder dies. (On systems without ``fcntl``, Windows, the
    lock holds within one process only.)

    Args:
        path: The JSON file.
        lock_wait: The longest `lock` waits for another process's refresh, in seconds.
        key: Names the Box user whose pair the file holds, so that processes sharing it pace
            together through a share (see `TokenStore.key`); ``None`` by default.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, lock_wait: float = FILE_LOCK_WAIT, key: str | None = None
    ) -> None:
        if isinstance(lock_wait, bool) or not isinstance(lock_wait, (int, float)):
            raise TypeError(f"lock_wait must be a number of seconds, got {type(lock_wait).__name__}")
        if not lock_wait > 0:
            raise ValueError(f"lock_wait must be positive, got {lock_wait!r}")
        if key is not None and not isinstance(key, str):
            raise TypeError(f"key must be a str or None, got {type(key).__name__}")
        if key is not None and not key.strip():
            raise ValueError("key must not be empty")
        self.path = Path(path)
        self.lock_wait = float(lock_wait)
        self.key = key

    @contextlib.asynccontextmanager
    async def lock(self) -> AsyncIterator[None]:
        """Hold the lock file's exclusive lock.

        Each call opens the lock file anew, so two holders in one process exclude each other too.
        Opening a small local file does not block the loop for long; doing it in a thread would
        leak the descriptor when the caller is cancelled meanwhile.

        Raises:
            BoxError: the lock file cannot be opened.
            BoxTimeoutError: another process held it for ``lock_wait`` seconds.
        """
        fd = self._open_lock_file()
        try:
            await self._flock(fd)
            try:
                yield
            finally:
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _open_lock_file(self) -> int:
        lock_path = self.path.with_name(self.path.name + ".lock")
        try:
            return os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise BoxError(f"cannot open the token file's lock {str(lock_path)!r}: {type(exc).__name__}") from None

    async def _flock(self, fd: int) -> None:
        # Tries without blocking: a thread blocked in flock could be neither cancelled nor bounded.
        if fcntl is None:  # pragma: no cover - Windows
            return
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.lock_wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # another holder
                if loop.time() >= give_up:
                    raise BoxTimeoutError(
                        f"another process has held the lock of the token file {str(self.path)!r} "
                        f"for {self.lock_wait:g} s"
                    ) from None
                await asyncio.sleep(_FILE_LOCK_POLL)
            except OSError as exc:  # a file system without locks (some network ones)
                raise BoxError(f"cannot lock the token file {str(self.path)!r}: {type(exc).__name__}") from None
            else:
                return

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
