"""A master, a replica and one Sentinel watching them (quorum 1), with a failover on demand.

What redis-py's ``redis.asyncio.sentinel.Sentinel(sentinels).master_for(name)`` connects to. After
``SENTINEL FAILOVER`` the Sentinel names the replica as master within about a second, but it
demotes the old master only when it next polls it (Sentinel polls every 10 s): until then the old
master still accepts writes from clients that stayed on it.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import redis

from .polling import wait_until
from .redis_replica import ReplicatedPair
from .redis_server import RedisServer

#: Seconds to wait for the Sentinel to see a healthy replica, or for a failover to finish.
SENTINEL_WAIT = 30.0
#: Seconds Sentinel polls the old master at most (its INFO period), plus its work: a bound for demotion.
DEMOTION_WAIT = 30.0


class SentinelServer(RedisServer):
    """``redis-server sentinel.conf --sentinel`` on a free port, monitoring one master.

    Args:
        binary: The ``redis-server`` executable (run in Sentinel mode).
        directory: Its own directory (its config, which Sentinel rewrites, and its log).
        name: The name clients ask for (``master_for(name)``).
        master: The master to monitor.
        down_after_ms: Milliseconds without answer before Sentinel thinks a node is down.
        failover_timeout_ms: Sentinel's ``failover-timeout``.
    """

    def __init__(
        self,
        binary: str,
        directory: Path,
        *,
        name: str,
        master: RedisServer,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 10_000,
    ) -> None:
        super().__init__(binary, directory)
        self.name = name
        self.master = master
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms

    @property
    def log_name(self) -> str:
        """``sentinel.log``."""
        return "sentinel.log"

    def command_line(self, *, tls: bool = False) -> list[str]:
        """``redis-server sentinel.conf --sentinel``, the config written for the current port (TLS unused)."""
        config = self.directory / "sentinel.conf"
        config.write_text(
            "\n".join(
                [
                    f"port {self.port}",
                    "bind 127.0.0.1",
                    f"dir {self.directory}",
                    f"logfile {self.log_name}",
                    f"sentinel monitor {self.name} 127.0.0.1 {self.master.port} 1",
                    f"sentinel down-after-milliseconds {self.name} {self.down_after_ms}",
                    f"sentinel failover-timeout {self.name} {self.failover_timeout_ms}",
                    "",
                ]
            ),
            encoding="utf-8",
        )
        return [self.binary, str(config), "--sentinel"]

    def master_state(self) -> dict[str, Any]:
        """``SENTINEL MASTER {name}`` as a dict of str: ``port``, ``flags``... as redis-py's Sentinel reads it.

        redis-py asks ``SENTINEL MASTERS``, which names the old master until the failover ends;
        ``GET-MASTER-ADDR-BY-NAME`` names the promoted replica earlier. Tests go by the former.
        """
        with self.admin(decode_responses=True) as client:
            raw: Any = client.execute_command("SENTINEL", "MASTER", self.name)  # type: ignore[no-untyped-call]
        return raw if isinstance(raw, dict) else dict(zip(raw[::2], raw[1::2], strict=True))

    def master_port(self) -> int:
        """The port of the node this Sentinel names as master now (`master_state`)."""
        return int(self.master_state()["port"])

    def replicas(self) -> list[dict[str, Any]]:
        """What this Sentinel knows of the master's replicas (``SENTINEL REPLICAS``), as dicts of str."""
        with self.admin(decode_responses=True) as client:
            raw: list[Any] = client.execute_command("SENTINEL", "REPLICAS", self.name)  # type: ignore[no-untyped-call]
        # redis-py 8 answers dicts; a flat list of names and values is the protocol's own form.
        return [
            fields if isinstance(fields, dict) else dict(zip(fields[::2], fields[1::2], strict=True)) for fields in raw
        ]


class SentinelGroup:
    """A master, one replica and one Sentinel (quorum 1) on free ports, each with its own directory.

    Args:
        binary: The ``redis-server`` executable.
        directory: A directory of the group's own.
        name: The master's name for Sentinel clients.
        down_after_ms: Sentinel's ``down-after-milliseconds`` (short: a quick test).
        failover_timeout_ms: Sentinel's ``failover-timeout``: how long a promotion may take before
            Sentinel aborts it (short, yet long enough for a loaded machine; `failover` asks again).
    """

    def __init__(
        self,
        binary: str,
        directory: Path,
        *,
        name: str = "box",
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 10_000,
    ) -> None:
        self.name = name
        self.pair = ReplicatedPair(binary, directory)
        self.sentinel = SentinelServer(
            binary,
            directory / "sentinel",
            name=name,
            master=self.pair.master,
            down_after_ms=down_after_ms,
            failover_timeout_ms=failover_timeout_ms,
        )

    @property
    def sentinels(self) -> list[tuple[str, int]]:
        """The Sentinels' addresses, as ``redis.asyncio.sentinel.Sentinel`` takes them."""
        return [("127.0.0.1", self.sentinel.port)]

    @property
    def nodes(self) -> tuple[RedisServer, RedisServer]:
        """The two data nodes, the first master at start."""
        return self.pair.master, self.pair.replica

    def node(self, port: int) -> RedisServer:
        """The data node listening on ``port``."""
        [found] = [node for node in self.nodes if node.port == port]
        return found

    def master(self) -> RedisServer:
        """The node the Sentinel names as master now."""
        return self.node(self.sentinel.master_port())

    def start(self) -> None:
        """Start master, replica and Sentinel; wait (bounded) until the Sentinel sees the replica healthy."""
        self.pair.start()
        try:
            self.sentinel.start()
            self._wait_healthy_replica()
        except BaseException:
            self.kill()
            raise

    def _healthy_replica(self) -> bool:
        with contextlib.suppress(redis.RedisError):
            return any(
                replica.get("flags") == "slave" and replica.get("master-link-status") == "ok"
                for replica in self.sentinel.replicas()
            )
        return False

    def _wait_healthy_replica(self) -> None:
        wait_until(self._healthy_replica, what=f"Sentinel sees a healthy replica of {self.name}", timeout=SENTINEL_WAIT)

    def failover(self) -> RedisServer:
        """``SENTINEL FAILOVER``, then wait (bounded) until the failover ends: the Sentinel names the new master.

        Does not wait for the old master to be demoted (see `wait_demoted`): clients still on it
        keep writing to it meanwhile, as in production.

        Returns:
            The new master.

        Raises:
            TimeoutError: the Sentinel did not name a new master in time.
        """
        old = self.sentinel.master_port()
        self._wait_healthy_replica()

        def promoted() -> RedisServer | None:
            with contextlib.suppress(redis.RedisError):
                state = self.sentinel.master_state()
                port, flags = int(state["port"]), state["flags"].split(",")
                in_progress = "failover_in_progress" in flags
                if port != old and not in_progress and "disconnected" not in flags:
                    new = self.node(port)
                    return new if new.info("replication")["role"] == "master" else None
                if port == old and not in_progress:
                    # Not begun, or aborted (the replica not promoted within failover-timeout,
                    # as on a loaded machine): ask again. NOGOODSLAVE while the Sentinel has
                    # not heard from the replica lately, INPROG if it has just begun: both pass.
                    with contextlib.suppress(redis.ResponseError):
                        self.sentinel.command("SENTINEL", "FAILOVER", self.name)
            return None

        return wait_until(promoted, what=f"Sentinel names a new master of {self.name}", timeout=SENTINEL_WAIT)

    def wait_demoted(self, node: RedisServer, timeout: float = DEMOTION_WAIT) -> None:
        """Wait (bounded) until ``node``, a former master, has been made a replica by the Sentinel.

        Raises:
            TimeoutError: it was not demoted in time.
        """

        def demoted() -> bool:
            with contextlib.suppress(redis.RedisError):
                return bool(node.info("replication")["role"] == "slave")
            return False

        wait_until(demoted, what=f"node {node.port} demoted", timeout=timeout, interval=0.1)

    def kill(self) -> None:
        """SIGKILL and reap the Sentinel and both data nodes."""
        try:
            self.sentinel.kill()
        finally:
            self.pair.kill()  # in turn reaps both, whatever happens to one

    def __repr__(self) -> str:
        return f"SentinelGroup(name={self.name!r}, sentinel={self.sentinel!r}, pair={self.pair!r})"
