"""Redis calls bounded in time, on a client usable in the running event loop, every failure a named `SharedStateError`.

Every facet of a `RedisShare` calls Redis through one `RedisCalls`:

- **Any event loop.** redis-py's asyncio connections belong to the loop that opened them. A
  share used from a new loop (a second ``asyncio.run``, a Celery task per run, a notebook) drops
  the connections of the old one and opens new ones; a cluster client is made again (from its URL)
  or, given by the caller, initialised again. A cluster client is initialised before its first use
  (redis-py 8.1's asyncio cluster fails now and then when used concurrently before).
- **Every failure is a `SharedStateError`**, whatever raised it (redis-py, a socket, a closed
  loop, the cluster layer), with a message that says what Redis refused and what to change:
  ``READONLY`` (a replica, or a master a failover demoted), ``OOM`` (full under ``noeviction``),
  ``NOPERM`` with the command the ACL user lacks (from inside a script Redis does not name it:
  the share then asks Redis command by command, once).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

import redis.exceptions
from redis.asyncio.cluster import RedisCluster

from .. import SharedStateError

__all__ = ["LOCK_POLL", "SCRIPT_COMMANDS", "Client", "RedisCalls"]

T = TypeVar("T")
#: A client of redis-py's (single node, Sentinel's ``master_for``, cluster) or valkey-py's.
Client = Any

#: Seconds between tries of a lock another process holds.
LOCK_POLL = 0.05

#: The commands the share's scripts run inside Redis, as an ACL names them: asked one by one when
#: Redis says only that a script "can't run this command".
SCRIPT_COMMANDS = (
    "time",
    "hmget",
    "hset",
    "hdel",
    "hincrby",
    "zrange",
    "zrem",
    "zadd",
    "zrangebyscore",
    "del",
    "pexpire",
)

_NOPERM_COMMAND = re.compile(r"'([\w|]+)' command")
_ADVICE = {
    "READONLY": "this connection reaches a replica, or a master that a failover demoted: give RedisShare the "
    "master's address (with Sentinel, Sentinel(...).master_for(...))",
    "OOM": "Redis reached its maxmemory with nothing it may evict (under noeviction nothing, under volatile-* "
    "only keys with a time to live): give it more memory, or a volatile-* eviction policy if it has noeviction "
    "(volatile-lru never evicts the OAuth 2.0 pairs and locks, which carry no time to live)",
}


def _refusal_of(exc: BaseException) -> str | None:
    """What Redis refused, in its own word (``READONLY``, ``OOM``, ``NOPERM <command>``), or ``None``."""
    if isinstance(exc, redis.exceptions.ReadOnlyError) or "READONLY" in str(exc)[:40]:
        return "READONLY"
    if isinstance(exc, redis.exceptions.OutOfMemoryError) or str(exc).startswith("OOM"):
        return "OOM"
    if isinstance(exc, redis.exceptions.NoPermissionError) or "NOPERM" in str(exc)[:40]:
        if "access" in str(exc) and "key" in str(exc):
            return "NOPERM keys"
        match = _NOPERM_COMMAND.search(str(exc))
        return f"NOPERM {match.group(1).lower()}" if match else "NOPERM"
    if "can't run this command" in str(exc):
        return "NOPERM"  # refused inside a script: the command is not named
    return None


#: Failures that are not refusals, most specific first, and how each is said. Timeouts come before
#: connections: from Python 3.11 asyncio's is the builtin TimeoutError, an OSError. Connection
#: failures and a closed loop are quoted (their texts name the host and port, or the loop); any
#: other failure (a script's error may quote arguments) is named only by its kind.
_FAILURES: tuple[tuple[tuple[type[BaseException], ...], str], ...] = (
    ((redis.exceptions.TimeoutError, asyncio.TimeoutError), "Redis did not answer {what} in time"),
    (
        (redis.exceptions.ClusterCrossSlotError, redis.exceptions.RedisClusterException),
        "the Redis cluster refused {what}: {name}: {exc}",
    ),
    ((redis.exceptions.ConnectionError, OSError, RuntimeError), "Redis failed {what}: {name}: {exc}"),
    ((BaseException,), "Redis failed {what}: {name}"),
)


def _describe(what: str, exc: BaseException) -> str:
    """A message for a failure of Redis ``what`` was doing: what was refused or went wrong, and what to change."""
    if isinstance(exc, redis.exceptions.AskError) or str(exc).startswith(("MOVED ", "ASK ")):
        return (
            f"Redis answered {what} with MOVED: the URL names a node of a Redis Cluster, which keeps this key on "
            "another node; pass cluster=True (or a RedisCluster client) to RedisShare"
        )
    refusal = _refusal_of(exc)
    if refusal is None:
        template = next(text for kinds, text in _FAILURES if isinstance(exc, kinds))
        return template.format(what=what, name=type(exc).__name__, exc=exc)
    kind, _, command = refusal.partition(" ")
    if kind != "NOPERM":
        return f"Redis refused {what} ({kind}): {_ADVICE[kind]}"
    if command == "keys":
        return (
            f"Redis refused {what} (NOPERM): its ACL user may not use the share's keys; give it the keys of the "
            "share's prefix (~PREFIX:*)"
        )
    return (
        f"Redis refused {what} (NOPERM): its ACL user may not run {command or 'a command the share runs'}; "
        f"add {f'+{command}' if command else 'it'} to the user's ACL (the README's Security section lists every "
        "command the share runs)"
    )


@contextlib.contextmanager
def _redis_errors(what: str) -> Iterator[None]:
    """Raise any failure in the block (not a cancellation) as `SharedStateError`, chained.

    Redis quotes an unknown command's arguments in its error ("unknown command 'SET', with args
    beginning with: ..."), and those may be a token being stored: the quote is cut from the error
    the chain keeps, in place, so that no traceback shows it.
    """
    try:
        yield
    except SharedStateError:
        raise
    except Exception as exc:
        if isinstance(exc, redis.exceptions.ResponseError):
            exc.args = tuple(_unquoted(arg) if isinstance(arg, str) else arg for arg in exc.args)
        raise SharedStateError(_describe(what, exc), refusal=_refusal_of(exc)) from exc


def _unquoted(text: str) -> str:
    head, quoted, _ = text.partition(_QUOTE)
    return f"{head}{quoted} (left out)" if quoted else text


#: Where Redis begins to quote a refused command's arguments.
_QUOTE = ", with args beginning with:"


class RedisCalls:
    """One Redis client for the share's facets, fit for the running loop, with the share's time bound on every call.

    Args:
        client: The client to start with.
        timeout: Seconds each call may take.
        prefix: The share's prefix: the key the ACL is probed with is under it.
        remake: Makes a new client (the share's URL); ``None`` when the caller gave the client.
    """

    def __init__(
        self,
        client: Client,
        timeout: float,
        *,
        prefix: str,
        remake: Callable[[], Client] | None = None,
        max_calls: int = 8,
    ) -> None:
        self._client = client
        self._max_calls = max_calls
        self._slots: asyncio.Semaphore | None = None  # calls in flight at once, in the running loop
        self._probe_key = f"{prefix}:acl-probe"
        self._remake = remake
        self.timeout = timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._set_up: asyncio.Task[None] | None = None  # the set-up of the client in the running loop
        self._guard: AsyncGenerator[None, None] | None = None  # closes the connections when the loop ends
        self._probed: str | None = None  # the command an ACL lacks, once asked

    @property
    def client(self) -> Client:
        """The client as it stands (for closing, and for registering scripts)."""
        return self._client

    @property
    def is_cluster(self) -> bool:
        return isinstance(self._client, RedisCluster) or type(self._client).__name__ == "ValkeyCluster"

    async def ready(self) -> Client:
        """The client, fit for the running loop: new connections in a new loop, a cluster initialised first.

        Every caller in a loop waits for the same set-up, so no call reaches a cluster client
        before it is initialised.
        """
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._loop is not None:
                with _redis_errors("reconnecting in this event loop"):
                    self._client = self._rebind(self._client)
            self._loop, self._set_up = loop, None
            self._slots = asyncio.Semaphore(self._max_calls)  # a semaphore belongs to one loop
        if self._set_up is None:
            self._set_up = loop.create_task(self._set_up_in_loop())
        try:
            await asyncio.shield(self._set_up)
        except BaseException:
            if self._set_up.done():
                self._set_up = None  # failed: the next call sets up again
            raise
        return self._client

    async def _set_up_in_loop(self) -> None:
        if self.is_cluster:
            with _redis_errors("initialising the cluster client"):
                await asyncio.wait_for(self._client.initialize(), self.timeout)
        if self._guard is None:
            guard = self._guard = self._closing_with_loop()
            await anext(guard)

    async def _closing_with_loop(self) -> AsyncGenerator[None, None]:
        """Suspended for as long as the loop runs: when it ends (``asyncio.run``'s ``shutdown_asyncgens``) the
        connections opened in it are closed while it can still close them, not left to a loop that is gone."""
        try:
            yield
        finally:
            self._guard = None
            await self._disconnect()

    async def _disconnect(self) -> None:
        with contextlib.suppress(Exception):
            if self._remake is not None or self.is_cluster:
                await self._client.aclose()  # the share's own client (made again in a next loop), or a cluster's nodes
            else:
                await self._client.connection_pool.disconnect()  # the caller's client stays theirs, reconnecting

    async def aclose(self) -> None:
        """Close the connections of the share's own client (one the caller gave stays the caller's to close)."""
        if self._remake is None:
            return
        guard, self._guard = self._guard, None
        if guard is not None and self._loop is asyncio.get_running_loop():
            await guard.aclose()  # closes the client
        else:
            await self._disconnect()

    def _rebind(self, client: Client) -> Client:
        """``client``, fit for a new loop: made again from the share's URL, or, given by the caller, its pool emptied.

        The old loop's connections were closed as it ended (when it ended by ``asyncio.run``); any
        left are dropped, not reused.
        """
        self._guard = None
        if self._remake is not None:
            return self._remake()
        if not self.is_cluster:
            client.connection_pool.reset()
        return client

    async def run(self, what: str, call: Callable[[Client], Awaitable[T]]) -> T:
        """``call(client)`` within the share's timeout; any failure raised as a named `SharedStateError`."""
        client = await self.ready()
        try:
            with _redis_errors(what):
                return await asyncio.wait_for(self._in_a_slot(call, client), self.timeout)
        except SharedStateError as error:
            if error.refusal != "NOPERM":
                raise
            command = await self._missing_command()
            raise SharedStateError(_describe(what, _Noperm(command)), refusal=f"NOPERM {command}") from error

    async def _in_a_slot(self, call: Callable[[Client], Awaitable[T]], client: Client) -> T:
        """``call(client)`` once fewer than ``max_calls`` calls are in flight: the wait counts in the timeout.

        A single node's pool waits for a free connection, but redis-py's cluster client raises
        ``MaxConnectionsError`` at once when a node's connections are all busy, and a caller's own
        client may do either: the share waits here, whatever the client, so no call fails for it.
        """
        assert self._slots is not None  # noqa: S101 - set by ready(), which run() awaits first
        async with self._slots:
            return await call(client)

    async def _missing_command(self) -> str:
        """Which command of the scripts the ACL user lacks, asked of Redis one by one (once per share)."""
        if self._probed is None:
            probe = self._probe_key
            for command in SCRIPT_COMMANDS:
                try:
                    await asyncio.wait_for(self._client.execute_command(*_PROBES[command](probe)), self.timeout)
                except redis.exceptions.NoPermissionError:
                    self._probed = command
                    break
                except Exception:  # noqa: BLE001, S112 - any other answer means the command itself is allowed
                    continue
            else:
                self._probed = "a command the share runs"
        return self._probed


class _Noperm(redis.exceptions.NoPermissionError):
    def __init__(self, command: str) -> None:
        super().__init__(f"no permissions to run the '{command}' command")


#: Harmless calls of each script command, on a probe key that nothing else uses.
_PROBES: dict[str, Callable[[str], tuple[str, ...]]] = {
    "time": lambda key: ("TIME",),
    "hmget": lambda key: ("HMGET", key, "f"),
    "hset": lambda key: ("HSET", key, "f", "0"),
    "hdel": lambda key: ("HDEL", key, "f"),
    "hincrby": lambda key: ("HINCRBY", key, "f", "0"),
    "zrange": lambda key: ("ZRANGE", key, "0", "0"),
    "zrem": lambda key: ("ZREM", key, "m"),
    "zadd": lambda key: ("ZADD", key, "0", "m"),
    "zrangebyscore": lambda key: ("ZRANGEBYSCORE", key, "0", "0"),
    "del": lambda key: ("DEL", key),
    "pexpire": lambda key: ("PEXPIRE", key, "1000"),
}
