"""Fixtures for Redis as companies run it: real processes on 127.0.0.1, killed and reaped at teardown.

A cluster is shared by every test of a process (it takes seconds to form); each test then uses a
`key_prefix` of its own. Everything else is per test: a Sentinel group, a replica, servers with
a memory limit, an append-only file or an ACL user.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import attrs
import pytest

from ..support.redis_cluster import RedisClusterNodes
from ..support.redis_replica import ReplicatedPair
from ..support.redis_sentinel import SentinelGroup
from ..support.redis_server import RedisServer, kill_all


class StartRedis(Protocol):
    """The `start_redis` fixture: starts one server and returns it, running."""

    def __call__(self, args: list[str] | None = None, *, appendonly: bool = False) -> RedisServer:
        """Start a server with more options ``args``, and an append-only file if ``appendonly``."""
        ...


_prefixes = itertools.count()


@attrs.frozen
class RedisBinaries:
    """The ``redis-server`` and ``redis-cli`` executables."""

    server: str
    cli: str


@pytest.fixture(scope="session")
def redis_binaries() -> RedisBinaries:
    """``redis-server`` and ``redis-cli``; the test is skipped, saying so, when either is missing."""
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        pytest.skip("redis-server or redis-cli is not installed: the Redis topology tests are skipped")
    return RedisBinaries(server=server, cli=cli)


@pytest.fixture
def key_prefix() -> str:
    """A key prefix no other test of this process uses (a module's tests share one cluster)."""
    return f"box-sessions-t{next(_prefixes)}"


@pytest.fixture(scope="session")
def redis_cluster(
    redis_binaries: RedisBinaries, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RedisClusterNodes]:
    """A 3-master Redis Cluster on 127.0.0.1, whole (every node agrees), made once per test process.

    It takes seconds to form, and pytest-xdist spreads a module's tests over its workers: one per
    worker, not one per module and worker. Tests never change its shape, and each keeps its keys
    under its own `key_prefix`.
    """
    cluster = RedisClusterNodes(redis_binaries.server, redis_binaries.cli, tmp_path_factory.mktemp("cluster"))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.kill()


@pytest.fixture
def sentinel_group(redis_binaries: RedisBinaries, tmp_path: Path) -> Iterator[SentinelGroup]:
    """A master, its replica and a Sentinel (quorum 1, 1 s down-after, 10 s failover-timeout) named ``box``."""
    group = SentinelGroup(redis_binaries.server, tmp_path / "sentinel-group")
    group.start()
    try:
        yield group
    finally:
        group.kill()


@pytest.fixture
def replicated_pair(redis_binaries: RedisBinaries, tmp_path: Path) -> Iterator[ReplicatedPair]:
    """A master and a linked read-only replica of it."""
    pair = ReplicatedPair(redis_binaries.server, tmp_path / "replicated")
    pair.start()
    try:
        yield pair
    finally:
        pair.kill()


@pytest.fixture
def start_redis(redis_binaries: RedisBinaries, tmp_path: Path) -> Iterator[StartRedis]:
    """Start single servers: ``start_redis(args=None, *, appendonly=False)``; each killed and reaped at teardown.

    Each has a directory of its own under the test's ``tmp_path``, kept across its restarts.
    """
    started: list[RedisServer] = []

    def start(args: list[str] | None = None, *, appendonly: bool = False) -> RedisServer:
        server = RedisServer(redis_binaries.server, tmp_path / f"redis-{len(started)}", args, appendonly=appendonly)
        started.append(server)
        server.start()
        return server

    try:
        yield start
    finally:
        kill_all(started)
