"""A Redis Cluster of three masters on 127.0.0.1 (no replicas), as managed services run in cluster mode.

Each node is a ``redis-server --cluster-enabled yes`` with its own directory and its own bus port
(``--cluster-port``, so that no port + 10000 is assumed free); ``redis-cli --cluster create`` spreads
the 16,384 slots over them. Keys of different slots may live on different nodes: a script or a
command naming keys of two slots is refused with ``CROSSSLOT``, a key asked of the wrong node
answers ``MOVED``.
"""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

import redis
from redis.asyncio.cluster import ClusterNode
from redis.crc import key_slot

from .polling import wait_until
from .redis_server import RedisServer, free_port, kill_all

#: Seconds ``redis-cli --cluster create`` may take (it waits for the nodes to meet).
CREATE_WAIT = 60.0
#: Seconds for every node to agree that the cluster is whole.
AGREE_WAIT = 30.0
#: Slots in a Redis Cluster.
SLOTS = 16384


def slot_of(key: str) -> int:
    """The hash slot of ``key`` (its hash tag's, when it has one), as the cluster computes it."""
    return int(key_slot(key.encode()))


def _cluster_info(node: RedisServer) -> dict[str, str]:
    """``CLUSTER INFO`` as ``node`` answers it (sent as two words, redis-py leaves the text as it is)."""
    with node.admin(decode_responses=True) as client:
        text: str = client.execute_command("CLUSTER", "INFO")  # type: ignore[no-untyped-call]
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def _slot_owners(node: RedisServer) -> list[tuple[int, int, int]]:
    """``CLUSTER SLOTS`` as ``node`` sees it: (first slot, last slot, owner's port), sorted."""
    with node.admin() as client:
        answer = client.execute_command("CLUSTER", "SLOTS")  # type: ignore[no-untyped-call]
    # Each entry: first slot, last slot, [host, port, id, ...] of the master, then its replicas.
    return sorted((int(entry[0]), int(entry[1]), int(entry[2][1])) for entry in answer)


def _create(command: list[str]) -> None:
    """Run ``redis-cli --cluster create ...`` (bounded); raise with its output if it fails."""
    created = subprocess.run(command, capture_output=True, text=True, timeout=CREATE_WAIT, check=False)  # noqa: S603 - a fixed binary
    if created.returncode != 0:
        raise RuntimeError(f"redis-cli --cluster create failed:\n{created.stdout[-2000:]}{created.stderr}")


class RedisClusterNodes:
    """Three (``size``) cluster nodes on free ports, joined into one cluster.

    Args:
        binary: The ``redis-server`` executable.
        cli: The ``redis-cli`` executable (for ``--cluster create``).
        directory: A directory of the cluster's own (one sub-directory per node).
        size: Masters in the cluster (at least 3, as ``redis-cli`` requires).
    """

    def __init__(self, binary: str, cli: str, directory: Path, *, size: int = 3) -> None:
        self.cli = cli
        self.nodes = [
            RedisServer(
                binary,
                directory / f"node-{n}",
                [
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-port",
                    str(free_port()),
                    "--cluster-node-timeout",
                    "5000",
                ],
            )
            for n in range(size)
        ]

    @property
    def startup_nodes(self) -> list[ClusterNode]:
        """Every node, as ``redis.asyncio.cluster.RedisCluster(startup_nodes=...)`` takes them."""
        return [ClusterNode("127.0.0.1", node.port) for node in self.nodes]

    @property
    def url(self) -> str:
        """The URL of one node (``redis://127.0.0.1:{port}``): ``RedisCluster.from_url`` finds the others."""
        return f"redis://127.0.0.1:{self.nodes[0].port}"

    def start(self) -> None:
        """Start the nodes, create the cluster, and wait (bounded) until every node agrees it is whole.

        Raises:
            RuntimeError: ``redis-cli --cluster create`` failed.
            TimeoutError: the nodes did not agree in time.
        """
        try:
            for node in self.nodes:
                node.start()
            command = [
                self.cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{node.port}" for node in self.nodes),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ]
            _create(command)
            wait_until(self.agreed, what="every cluster node agrees the cluster is whole", timeout=AGREE_WAIT)
        except BaseException:
            self.kill()
            raise

    def agreed(self) -> bool:
        """Whether every node says ``cluster_state:ok`` with all slots and nodes, and all map slots alike."""
        with contextlib.suppress(redis.RedisError):
            for node in self.nodes:
                info = _cluster_info(node)
                whole = info.get("cluster_state") == "ok" and info.get("cluster_slots_ok") == str(SLOTS)
                if not whole or info.get("cluster_known_nodes") != str(len(self.nodes)):
                    return False
            maps = [_slot_owners(node) for node in self.nodes]
            return all(owners == maps[0] for owners in maps)
        return False

    def node_for(self, key: str) -> RedisServer:
        """The node that holds ``key``'s slot."""
        slot = slot_of(key)
        owners = _slot_owners(self.nodes[0])
        [port] = [port for first, last, port in owners if first <= slot <= last]
        [node] = [node for node in self.nodes if node.port == port]
        return node

    def keys(self, pattern: str = "*") -> dict[str, int]:
        """Every key matching ``pattern`` on every node, with the port of the node holding it."""
        found: dict[str, int] = {}
        for node in self.nodes:
            with node.admin(decode_responses=True) as client:
                found.update({str(key): node.port for key in client.scan_iter(match=pattern, count=1000)})
        return found

    def kill(self) -> None:
        """SIGKILL and reap every node."""
        kill_all(self.nodes)

    def __repr__(self) -> str:
        return f"RedisClusterNodes(ports={[node.port for node in self.nodes]})"
