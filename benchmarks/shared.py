"""Benchmark part ``shared``: four processes of one Box app, pacing through Redis against pacing alone.

Four processes, each terminating a quarter of 16,000 user ids in batches of 100 (160 requests),
send to one FakeBox process allowing 1,000 requests a minute (Box's documented limit), each
paced at that rate by its own `RateLimit`. With ``BoxClient(shared=RedisShare(...))`` they share
one token, one schedule and one cool-down; alone, each paces as if it were the only one. The
figures come from FakeBox. A ``redis-server`` on 127.0.0.1 (a free port, no persistence) is
started for the run and killed after it, and so is a Redis Cluster of three masters on 127.0.0.1
(``RedisShare(url, cluster=True)``), as managed services run Redis.
"""

from __future__ import annotations

import collections
import hashlib
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from box_sessions.redis._pacing import _GIVE_BACK, _RECORD, _RESERVE

#: FakeBox's limit and each client's pacing, in requests a minute.
RATE = 1000.0
PROCESSES = 4
BATCH = 100
#: Seconds any process may take before the run is abandoned.
BOUND = 300.0
#: Seconds a redis-server may take to answer PING, and to be reaped once killed.
START_WAIT = 10.0
#: Seconds ``redis-cli --cluster create`` may take, and then every node to say the cluster is whole.
CREATE_WAIT = 60.0
AGREE_WAIT = 30.0
CLUSTER_NODES = 3
#: Slots in a Redis Cluster: every one must be served before the cluster counts as whole.
SLOTS = 16384
#: The SHA-1 digests by which clients run the pacing scripts (EVALSHA).
PACING_SCRIPTS = {hashlib.sha1(script.encode()).hexdigest() for script in (_RESERVE, _GIVE_BACK, _RECORD)}  # noqa: S324 - Redis names scripts by SHA-1

WORKER = """
import asyncio, json, sys, time

import box_sessions
from box_sessions.redis import RedisShare


async def main() -> None:
    config = json.loads(sys.argv[1])
    share = RedisShare(config["redis"], cluster=config["cluster"]) if config["redis"] else None
    auth = box_sessions.CCGAuth(client_id="fake-client-id", client_secret="fake-client-secret", enterprise_id="1")
    pacing = box_sessions.RateLimit(requests_per_minute=config["rate"])
    client = box_sessions.BoxClient(auth, base_url=config["url"], rate_limit=pacing, shared=share)
    ids = [str(10_000_000 + i) for i in range(config["first"], config["first"] + config["count"])]
    if share is not None:
        # Connected before the go, as a worker already serving is: a cluster client's first call
        # (CLUSTER SLOTS, COMMAND, a connection to each node) is set-up, not pacing. Timed apart.
        started = time.perf_counter()
        await share.tokens.load("bench-warm-up")
        print(json.dumps({"first_call_s": time.perf_counter() - started}), flush=True)
    else:
        print(json.dumps({"first_call_s": 0.0}), flush=True)
    print("ready", flush=True)
    sys.stdin.readline()
    try:
        async with client:
            report = await client.session_termination.terminate(user_ids=ids, batch_size=config["batch"])
    finally:
        if share is not None:
            await share.aclose()
    print(json.dumps({"failed": len(report.failed)}), flush=True)


asyncio.run(main())
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Monitor:
    """``redis-cli monitor`` on a Redis for the length of a block: the commands clients sent it.

    MONITOR shows the commands a script runs too, marked as the script's (``[0 lua]``); those
    are not round trips, and are not counted.
    """

    def __init__(self, port: int, log: Path) -> None:
        self._port = port
        self._log = log
        self.commands = 0
        self.pacing = 0
        self.kinds: collections.Counter[str] = collections.Counter()

    def __enter__(self) -> Monitor:
        binary = shutil.which("redis-cli")
        if binary is None:
            raise SystemExit("the shared benchmark needs redis-cli on PATH to count Redis commands")
        self._out = self._log.open("w")
        args = [binary, "-h", "127.0.0.1", "-p", str(self._port), "monitor"]
        self._proc = subprocess.Popen(args, stdout=self._out)  # noqa: S603 - redis-cli from PATH, fixed arguments
        deadline = time.monotonic() + 10
        while self._log.stat().st_size == 0:  # "OK" once it monitors
            if time.monotonic() > deadline:
                raise SystemExit("redis-cli monitor did not start within 10 s")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.2)  # the last commands reach the monitor's output
        self._proc.terminate()
        self._proc.wait(10)
        self._out.close()
        lines = self._log.read_text(errors="replace").splitlines()
        sent = [line.split("]", 1)[1].split() for line in lines if " [" in line and " lua]" not in line]
        self.commands = len(sent)
        self.kinds = collections.Counter(words[0].strip('"').lower() for words in sent)
        self.pacing = sum(1 for words in sent if len(words) > 1 and words[1].strip('"') in PACING_SCRIPTS)


def _binary(name: str) -> str:
    binary = shutil.which(name)
    if binary is None:
        raise SystemExit(f"the shared benchmark needs {name} on PATH")
    return binary


def _start_redis(args: list[str], port: int) -> subprocess.Popen[bytes]:
    """Start ``redis-server`` with ``args`` and wait (bounded) until it answers PING on ``port``."""
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL)  # noqa: S603 - redis-server from PATH, fixed arguments
    deadline = time.monotonic() + START_WAIT
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return proc
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            _reap([proc])
            raise SystemExit(f"redis-server did not answer on port {port} within {START_WAIT:g} s")
        time.sleep(0.05)


def _reap(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGKILL and reap every process (bounded): the servers keep nothing worth a clean shutdown."""
    for proc in procs:
        proc.kill()
    for proc in procs:
        proc.wait(START_WAIT)


@contextmanager
def redis_server() -> Iterator[str]:
    """A redis-server on 127.0.0.1 for the run: its URL."""
    port = _free_port()
    args = [_binary("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = _start_redis(args, port)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        _reap([proc])


def _cluster_whole(cli: str, port: int) -> bool:
    """Whether the node on ``port`` says the cluster is whole: state ok, every slot served, every node known."""
    try:
        done = subprocess.run(  # noqa: S603 - redis-cli from PATH, fixed arguments
            [cli, "-h", "127.0.0.1", "-p", str(port), "cluster", "info"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False
    info = dict(line.strip().split(":", 1) for line in done.stdout.splitlines() if ":" in line)
    return (
        info.get("cluster_state") == "ok"
        and info.get("cluster_slots_ok") == str(SLOTS)
        and info.get("cluster_known_nodes") == str(CLUSTER_NODES)
    )


@contextmanager
def redis_cluster(directory: Path) -> Iterator[list[int]]:
    """A Redis Cluster of three masters on 127.0.0.1 (no replicas, no persistence) for the run: its ports.

    The approach of ``tests/support/redis_cluster.py``, written again here so that the benchmark,
    run as a script with ``benchmarks/`` on its path, needs nothing from the tests: each node has
    its own directory and its own bus port (``--cluster-port``: no port + 10000 is assumed free);
    ``redis-cli --cluster create`` spreads the slots; every wait is bounded.
    """
    binary, cli = _binary("redis-server"), _binary("redis-cli")
    procs: list[subprocess.Popen[bytes]] = []
    ports: list[int] = []
    try:
        for n in range(CLUSTER_NODES):
            port, node_dir = _free_port(), directory / f"cluster-node-{n}"
            node_dir.mkdir()
            args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
            args += ["--dir", str(node_dir), "--cluster-enabled", "yes"]
            args += ["--cluster-config-file", str(node_dir / "nodes.conf"), "--cluster-port", str(_free_port())]
            procs.append(_start_redis(args, port))
            ports.append(port)
        create = [cli, "--cluster", "create", *(f"127.0.0.1:{port}" for port in ports)]
        create += ["--cluster-replicas", "0", "--cluster-yes"]
        created = subprocess.run(create, capture_output=True, text=True, timeout=CREATE_WAIT, check=False)  # noqa: S603 - redis-cli from PATH
        if created.returncode != 0:
            raise SystemExit(f"redis-cli --cluster create failed:\n{created.stdout[-2000:]}{created.stderr}")
        deadline = time.monotonic() + AGREE_WAIT
        while not all(_cluster_whole(cli, port) for port in ports):
            if time.monotonic() > deadline:
                raise SystemExit(f"the cluster's nodes did not all say cluster_state:ok within {AGREE_WAIT:g} s")
            time.sleep(0.1)
        yield ports
    finally:
        _reap(procs)


def run_workers(
    script: Path, url: str, redis: str | None, ids: int, *, cluster: bool = False
) -> tuple[float, list[float]]:
    """Start the processes, let them go together, wait for all.

    Returns:
        The wall time from go to the last end, and each process's first Redis call (made before the go).
    """
    share = ids // PROCESSES
    procs = []
    first_calls: list[float] = []
    for n in range(PROCESSES):
        config = {
            "url": url,
            "redis": redis,
            "cluster": cluster,
            "rate": RATE,
            "first": n * share,
            "count": share,
            "batch": BATCH,
        }
        proc = subprocess.Popen(  # noqa: S603 - this interpreter running our own script
            [sys.executable, str(script), json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None  # noqa: S101
        first_calls.append(json.loads(proc.stdout.readline())["first_call_s"])
        assert proc.stdout.readline().strip() == "ready"  # noqa: S101
        procs.append(proc)
    started = time.perf_counter()
    for proc in procs:
        assert proc.stdin is not None  # noqa: S101
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        proc.communicate(timeout=BOUND)
        assert proc.returncode == 0, f"a worker failed with status {proc.returncode}"  # noqa: S101
    return time.perf_counter() - started, first_calls


class Pacing(NamedTuple):
    """One row's set-up: its name, the Redis URL the workers share through (none: alone), and the ports to monitor."""

    name: str
    redis: str | None
    cluster: bool
    ports: list[int]


def shared_rows(server: Callable[..., AbstractContextManager[Any]], *, quick: bool) -> list[dict[str, Any]]:
    """Run the job shared through Redis, through a Redis Cluster, and alone; one row each, printed as it comes.

    Args:
        server: Starts a FakeBox process (``bench.Server``): ``url`` and ``stats()``.
        quick: A quarter of the job, for a smoke test.
    """
    ids = 4_000 if quick else 16_000
    needed = ids // BATCH
    print(  # noqa: T201
        f"\n{PROCESSES} processes of one Box app, {ids:,} user ids in batches of {BATCH} ({needed} requests), "
        f"FakeBox at {RATE:,.0f} requests a minute with 150 +- 50 ms, each client paced at that rate"
    )
    print(  # noqa: T201
        "| pacing | wall s | requests | 429s | token requests | ids lost | allowed rate used "
        "| Redis commands per request: pacing, all |"
    )
    print("|---|---|---|---|---|---|---|---|")  # noqa: T201
    rows = []
    with ExitStack() as resources:
        tmp = Path(resources.enter_context(tempfile.TemporaryDirectory()))
        redis = resources.enter_context(redis_server())
        cluster_ports = resources.enter_context(redis_cluster(tmp))
        script = tmp / "worker.py"
        script.write_text(WORKER, encoding="utf-8")
        single = int(redis.rsplit(":", 1)[1].split("/")[0])
        setups = (
            Pacing("shared through Redis", redis, cluster=False, ports=[single]),
            Pacing(
                f"shared through a Redis Cluster ({CLUSTER_NODES} masters)",
                f"redis://127.0.0.1:{cluster_ports[0]}",
                cluster=True,
                ports=cluster_ports,
            ),
            Pacing("each process alone", None, cluster=False, ports=[]),
        )
        for setup in setups:
            with server(rate_limit=RATE, latency=0.15, jitter=0.05) as fake, ExitStack() as monitors:
                # One monitor per node: a cluster's commands are summed over its nodes.
                seen = [monitors.enter_context(Monitor(port, tmp / f"monitor-{port}")) for port in setup.ports]
                wall, first_calls = run_workers(script, fake.url, setup.redis, ids, cluster=setup.cluster)
                stats = fake.stats()
            rows.append(_row(setup, seen, stats, wall, ids, first_calls=first_calls))
    return rows


def _row(
    setup: Pacing, seen: list[Monitor], stats: dict[str, Any], wall: float, ids: int, *, first_calls: list[float]
) -> dict[str, Any]:
    """The row of one run, from FakeBox's figures and the monitors' counts; printed as it comes."""
    counts = stats["status_counts"]
    requests = sum(counts.values()) - stats["token_requests"]
    pacing = sum(monitor.pacing for monitor in seen)
    commands = sum(monitor.commands for monitor in seen)
    kinds = sum((monitor.kinds for monitor in seen), collections.Counter[str]())
    row = {
        "pacing": setup.name,
        "wall_s": round(wall, 1),
        "requests": requests,
        "429s": counts.get("429", 0),
        "429_share": round(counts.get("429", 0) / requests, 4) if requests else 0.0,
        "token_requests": stats["token_requests"],
        "lost": ids - sum(stats["distinct_terminated"].values()),
        "allowed_rate_used": round(ids // BATCH / (RATE / 60) / wall, 3),
        "redis_pacing_per_request": round(pacing / requests, 2) if setup.redis and requests else 0.0,
        "redis_commands_per_request": round(commands / requests, 2) if setup.redis and requests else 0.0,
        "first_redis_call_ms": round(max(first_calls) * 1000) if setup.redis else 0,
    }
    redis_figures = f"{row['redis_pacing_per_request']}, {row['redis_commands_per_request']}" if setup.redis else "-"
    print(  # noqa: T201 - a benchmark prints its figures
        f"| {setup.name} | {row['wall_s']} | {requests} | {row['429s']} ({row['429_share']:.1%}) | "
        f"{row['token_requests']} | {row['lost']} | {row['allowed_rate_used']:.2f} | {redis_figures} |",
        flush=True,
    )
    if setup.redis:
        print(f"Redis commands by kind: {dict(kinds.most_common())}")  # noqa: T201
        print(  # noqa: T201
            "Each process's first Redis call, before the go (set-up, not in the wall time): "
            + ", ".join(f"{seconds * 1000:.0f}" for seconds in first_calls)
            + " ms"
        )
    return row
