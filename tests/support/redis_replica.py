"""A master and its read-only replica (``--replicaof``): the replica answers reads and refuses writes with ``READONLY``.

What a client pointed at a replica meets, or a client left on a master that a failover demoted.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import redis

from .polling import wait_until
from .redis_server import RedisServer, kill_all

#: Seconds for a replica to connect to its master, or to catch up with it.
REPLICATION_WAIT = 15.0


def replicating(replica: RedisServer) -> bool:
    """Whether ``replica`` is a replica whose link to its master is up."""
    with contextlib.suppress(redis.RedisError):
        info = replica.info("replication")
        return bool(info.get("role") == "slave" and info.get("master_link_status") == "up")
    return False


def start_replica(binary: str, directory: Path, master: RedisServer, args: list[str] | None = None) -> RedisServer:
    """Start a replica of ``master`` and wait (bounded) until its link to the master is up.

    Args:
        binary: The ``redis-server`` executable.
        directory: The replica's own directory.
        master: The running master.
        args: More options for the replica.

    Raises:
        TimeoutError: the link did not come up within `REPLICATION_WAIT` seconds.
    """
    replica = RedisServer(binary, directory, [*(args or []), "--replicaof", "127.0.0.1", str(master.port)])
    replica.start()
    try:
        wait_until(lambda: replicating(replica), what=f"replica {replica.port} linked", timeout=REPLICATION_WAIT)
    except BaseException:
        replica.kill()
        raise
    return replica


class ReplicatedPair:
    """A master and one read-only replica of it, each its own ``redis-server`` on a free port.

    Args:
        binary: The ``redis-server`` executable.
        directory: A directory of the pair's own (``master/`` and ``replica/`` go in it).
        master_args: More options for the master.
        replica_args: More options for the replica.
    """

    def __init__(
        self,
        binary: str,
        directory: Path,
        *,
        master_args: list[str] | None = None,
        replica_args: list[str] | None = None,
    ) -> None:
        self.binary = binary
        self.directory = directory
        # A master sends its first copy to a replica at once, not after 5 s waiting for others.
        self.master = RedisServer(
            binary, directory / "master", ["--repl-diskless-sync-delay", "0", *(master_args or [])]
        )
        self._replica_args = list(replica_args or [])
        self._replica: RedisServer | None = None

    @property
    def replica(self) -> RedisServer:
        """The replica (started by `start`)."""
        assert self._replica is not None, "the pair is not started"
        return self._replica

    def start(self) -> None:
        """Start the master, then the replica, and wait (bounded) until the replica is linked."""
        self.master.start()
        try:
            self._replica = start_replica(self.binary, self.directory / "replica", self.master, self._replica_args)
        except BaseException:
            self.master.kill()
            raise

    def wait_synced(self, timeout: float = REPLICATION_WAIT) -> None:
        """Wait (bounded) until the replica has every write the master had when called.

        Raises:
            TimeoutError: the replica did not catch up in time.
        """
        offset = int(self.master.info("replication")["master_repl_offset"])

        def caught_up() -> bool:
            with contextlib.suppress(redis.RedisError):
                return int(self.replica.info("replication")["master_repl_offset"]) >= offset
            return False

        wait_until(caught_up, what=f"replica {self.replica.port} at offset {offset}", timeout=timeout)

    def kill(self) -> None:
        """SIGKILL and reap both processes."""
        kill_all([server for server in (self._replica, self.master) if server is not None])

    def __repr__(self) -> str:
        return f"ReplicatedPair(master={self.master!r}, replica={self._replica!r})"
