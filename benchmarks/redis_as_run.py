"""Issue 17's table, measured: two worker processes of one Box app through Redis as companies run it.

Each row of the issue ("Redis as run") is reproduced with real ``redis-server`` processes on
127.0.0.1 (started by the helpers the tests use, ``tests/support/redis_*.py``), real worker
processes (this script, ``worker`` mode) and a FakeBox process allowing 1,000 requests a minute:
``box-sessions fake-server`` for the CCG rows, and for the OAuth 2.0 rows this script's
``fakebox`` mode (the same FakeBox, which besides issues the user's first refresh token, counts the
spent refresh tokens it is sent, and can hold a refresh's answer while Redis is killed). One line
per set-up says what happened: ids terminated of the total, token requests, 429s, spent refresh
tokens Box received (``invalid_grant``), WARNING/INFO lines about the share per process, the
most Redis connections a process held at once and how many it opened (sampled from ``/proc``),
and the outcome.

    python benchmarks/redis_as_run.py                    # every row, a few minutes
    python benchmarks/redis_as_run.py --only eviction restart

``python -m nox -s redis_as_run`` installs what it needs and runs it. Linux only (``/proc``);
``redis-server`` and ``redis-cli`` 7 on PATH. Every wait is bounded, every process is killed and
reaped, and nothing but 127.0.0.1 is ever a target.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import logging
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import attrs
import httpx
import redis

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the tests' Redis helpers, beside this folder
    sys.path.insert(0, str(ROOT))

from tests.support.redis_acl import add_acl_user  # noqa: E402
from tests.support.redis_cluster import RedisClusterNodes  # noqa: E402
from tests.support.redis_memory import FILLER_SIZE, drop_filler, fill_memory, maxmemory_args, missing  # noqa: E402
from tests.support.redis_replica import ReplicatedPair  # noqa: E402
from tests.support.redis_sentinel import SentinelGroup  # noqa: E402
from tests.support.redis_server import RedisServer, kill_all  # noqa: E402

#: The Box app's limit at FakeBox, and each process's pacing: Box's documented 1,000 calls a minute.
RATE = 1000.0
#: FakeBox answers in 150 +- 50 ms, as Box does.
LATENCY, JITTER = 0.15, 0.05
#: Seconds an OAuth 2.0 access token lives at FakeBox in the OAuth 2.0 rows (``--token-lifetime``): the
#: client refreshes at half its life, every 6 s, so the rows' jobs (twice the ids, about 15 s) refresh at
#: 0, 6 and 12 s. Much shorter lives are refused in flight (``--token-lifetime 6`` shows it): a request's
#: token is taken before it waits for its slot in the schedule, which takes seconds once Box lowered the rate.
OAUTH2_LIFETIME = 12.0
#: Seconds into an OAuth 2.0 job: the eviction row fills Redis at ``FILL_AT`` (volatile-lru: kept full
#: across the refresh at 6 s, whose answer Box holds ``HOLD_FULL`` s); the restart row holds the first
#: refresh that comes after ``HOLD_AFTER`` (the one at 6 s) and kills Redis meanwhile.
FILL_AT, HOLD_FULL, HOLD_AFTER = 3.0, 3.0, 1.5
#: Where RedisShare (default prefix) keeps the OAuth 2.0 pair of the workers' user.
USER = "user-42"
PAIR = f"box-sessions:oauth2:{{{USER}}}"
#: Seconds any one process (a worker, a FakeBox) may take to start, and a whole row's job to run.
START_BOUND = 30.0
JOB_BOUND = 180.0
#: Seconds between two looks at the workers' connections.
SAMPLE = 0.05
#: Seconds FakeBox in ``fakebox`` mode serves at most, and holds a refresh's answer at most.
SERVE_BOUND = 900.0
HOLD_BOUND = 30.0
#: Redis down for this long in the restart row, as the issue did.
RESTART_GAP = 2.0

ROWS = ("cluster", "eviction", "restart", "refusals", "event-loops", "sentinel", "valkey", "maxmemory")


def say(text: str = "") -> None:
    """Print a line of the results at once."""
    print(text, flush=True)  # noqa: T201 - a benchmark prints what it measured


# -- worker mode: one process of the Box app -------------------------------------------------------


class LogCount(logging.Handler):
    """Counts the ``box_sessions`` logger's lines by level, those about the share apart, and keeps a few."""

    #: Words that mark a line about the share (Redis, its tokens, its locks, its pacing state).
    SHARE_WORDS = ("share", "redis", "token store", "oauth 2.0 lock", "maxmemory", "oauth 2.0 pair")

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.counts: collections.Counter[str] = collections.Counter()
        self.samples: dict[str, list[str]] = collections.defaultdict(list)

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        about_share = any(word in message.lower() for word in self.SHARE_WORDS)
        level = record.levelname
        self.counts[f"{level} {'share' if about_share else 'other'}"] += 1
        if about_share and level != "INFO" and len(self.samples[level]) < 4:
            shown = message if len(message) <= 240 else message[:237] + "..."
            if shown not in self.samples[level]:
                self.samples[level].append(shown)


def _failure_kind(error: BaseException) -> str:
    code = getattr(error, "code", None)
    return f"{type(error).__name__}({code})" if code else type(error).__name__


def _make_client(redis: dict[str, Any]) -> Any:
    """The client a user would build for ``redis`` (``None``: the share makes one from the URL)."""
    kind = redis["kind"]
    if kind == "cluster-client":
        from redis.asyncio.cluster import ClusterNode, RedisCluster  # noqa: PLC0415 - only this row's workers

        return RedisCluster(startup_nodes=[ClusterNode(host, port) for host, port in redis["nodes"]])
    if kind == "sentinel":
        from redis.asyncio.sentinel import Sentinel  # noqa: PLC0415 - only this row's workers

        sentinels = [tuple(address) for address in redis["sentinels"]]
        return Sentinel(sentinels, socket_timeout=2.0).master_for(redis["name"], socket_timeout=2.0)  # type: ignore[no-untyped-call]
    if kind == "valkey":
        import valkey.asyncio  # noqa: PLC0415 - only this row's workers

        return valkey.asyncio.Valkey.from_url(redis["url"])
    return None


async def _close_client(client: Any) -> None:
    """Close a client the worker built (the share leaves a given client to its owner), and Sentinel's connections."""
    if client is None:
        return
    with contextlib.suppress(Exception):
        await client.aclose()
    manager = getattr(getattr(client, "connection_pool", None), "sentinel_manager", None)
    for sentinel in getattr(manager, "sentinels", []):
        with contextlib.suppress(Exception):
            await sentinel.aclose()


async def _one_run(config: dict[str, Any], share: Any, ids: list[str], *, last: bool, client: Any) -> dict[str, Any]:
    """One ``asyncio.run``'s job: the ids through a paced client sharing ``share``; its outcome as plain data."""
    import box_sessions  # noqa: PLC0415 - workers only

    started = time.monotonic()
    result: dict[str, Any] = {"ids": len(ids), "terminated": 0, "failures": {}, "error": None}
    try:
        if config["auth"] == "oauth2":
            auth: box_sessions.BoxAuth = box_sessions.OAuth2Auth(
                client_id="fake-client-id",
                client_secret="fake-client-secret",  # noqa: S106 - FakeBox's well-known credentials
                refresh_token=config["refresh_token"],
                token_store=share.token_store(USER),
            )
        else:
            auth = box_sessions.CCGAuth(
                client_id="fake-client-id",
                client_secret="fake-client-secret",  # noqa: S106 - FakeBox's well-known credentials
                enterprise_id="1",
            )
        pacing = box_sessions.RateLimit(requests_per_minute=config["rate"])
        async with box_sessions.BoxClient(auth, base_url=config["box"], rate_limit=pacing, shared=share) as box:
            report = await asyncio.wait_for(
                box.session_termination.terminate(user_ids=ids, batch_size=config["batch"]), JOB_BOUND
            )
        result["terminated"] = report.terminated_count
        result["failures"] = dict(collections.Counter(_failure_kind(f.error) for f in report.failed))
        if report.stopped_by is not None:
            result["error"] = f"stopped by {_failure_kind(report.stopped_by)}: {report.stopped_by}"
    except Exception as exc:  # noqa: BLE001 - whatever the call raised is the outcome measured
        result["error"] = f"{type(exc).__name__}: {exc}"[:300]
    finally:
        if last:
            with contextlib.suppress(Exception):
                await share.aclose()
            await _close_client(client)
    result["wall"] = round(time.monotonic() - started, 2)
    return result


def worker(config: dict[str, Any]) -> None:
    """A worker process: builds its share (outside any event loop), says ``ready``, waits for ``go``, runs, reports."""
    counted = LogCount()
    logger = logging.getLogger("box_sessions")
    logger.addHandler(counted)
    every_line = logging.StreamHandler(sys.stderr)  # kept in worker-N.err (see --keep)
    every_line.setFormatter(logging.Formatter("%(relativeCreated)8.0f ms %(levelname)s %(message)s"))
    logger.addHandler(every_line)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    out: dict[str, Any] = {"runs": [], "error": None}
    share: Any = None
    client: Any = None
    try:
        from box_sessions.redis import RedisShare  # noqa: PLC0415 - workers only

        redis = config["redis"]
        client = _make_client(redis)
        if client is None:
            share = RedisShare(redis["url"], cluster=redis.get("cluster", False), prefix=config["prefix"])
        else:
            share = RedisShare(client=client, prefix=config["prefix"])
    except Exception as exc:  # noqa: BLE001 - a refused client is what the cluster and Valkey rows measure
        out["error"] = f"{type(exc).__name__}: {exc}"[:300]
    print("ready", flush=True)  # noqa: T201 - the driver waits for it
    sys.stdin.readline()
    started = time.monotonic()
    if share is not None:
        ids = [str(config["first"] + n) for n in range(config["count"])]
        runs = config["runs"]
        chunks = [ids[n::runs] for n in range(runs)]
        for n, chunk in enumerate(chunks):
            # One asyncio.run each: the event-loop row runs several through one share.
            out["runs"].append(asyncio.run(_one_run(config, share, chunk, last=n == runs - 1, client=client)))
    out["wall"] = round(time.monotonic() - started, 2)
    out["log"] = dict(counted.counts)
    out["samples"] = dict(counted.samples)
    print(json.dumps(out), flush=True)  # noqa: T201 - the driver reads it


# -- fakebox mode: FakeBox for the OAuth 2.0 rows ---------------------------------------------------


class HeldRefreshes:
    """Counts the spent refresh tokens FakeBox is sent, and holds one refresh's answer on demand."""

    def __init__(self) -> None:
        self.invalid_grant = 0
        self.armed = False
        self.arrived = asyncio.Event()
        self.release = asyncio.Event()

    def control(self, path: str) -> dict[str, Any]:
        if path == "/_asrun/hold":
            self.armed = True
            self.arrived.clear()
            self.release.clear()
        elif path == "/_asrun/release":
            self.release.set()
        return {"held": self.arrived.is_set() and not self.release.is_set()}


async def serve_fakebox(args: argparse.Namespace) -> None:
    from box_sessions.testing import FakeBox, LoopbackServer, Reply, Request  # noqa: PLC0415 - this mode only

    fake = FakeBox(
        rate_limit=args.rate_limit,
        latency=args.latency,
        jitter=args.jitter,
        token_lifetime=args.token_lifetime,
        seed=7,
        record_requests=False,
    )
    first = fake.issue_refresh_token()
    held = HeldRefreshes()

    async def handle(request: Request) -> Reply:
        path = request.path.split("?", 1)[0]
        if path == "/_asrun/stats":
            stats = {**fake.stats(), "spent_refresh_tokens": fake.spent_refresh_tokens}
            stats["invalid_grant"] = held.invalid_grant
            return Reply(200, json.dumps(stats).encode(), {"content-type": "application/json"})
        if path.startswith("/_asrun/"):
            return Reply(200, json.dumps(held.control(path)).encode(), {"content-type": "application/json"})
        reply = await fake.handle(request)
        if path == "/oauth2/token":
            if reply.status == 400 and b"invalid_grant" in reply.body:
                held.invalid_grant += 1
            if held.armed and reply.status == 200 and b"grant_type=refresh_token" in request.body:
                held.armed = False
                held.arrived.set()  # Box has spent the refresh token; the new pair is in this answer only
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(held.release.wait(), HOLD_BOUND)
        return reply

    async with LoopbackServer(handle) as server:
        print(f"FakeBox listening on {server.url} refresh-token {first}", flush=True)  # noqa: T201 - read by the driver
        await asyncio.sleep(SERVE_BOUND)


# -- the driver ---------------------------------------------------------------------------------


def _reap(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.communicate(timeout=10)


class Fake:
    """A FakeBox process: ``box-sessions fake-server`` (CCG rows) or this script's ``fakebox`` mode (OAuth 2.0 rows)."""

    def __init__(self, *, oauth2: bool, token_lifetime: float = 3600.0) -> None:
        self.oauth2 = oauth2
        rate = ["--rate-limit", str(RATE), "--latency", str(LATENCY), "--jitter", str(JITTER)]
        lifetime = ["--token-lifetime", str(token_lifetime)]
        if oauth2:
            command = [sys.executable, __file__, "fakebox", *rate, *lifetime]
        else:
            command = [sys.executable, "-m", "box_sessions", "fake-server", "--seed", "7", *rate, *lifetime]
        self.process = subprocess.Popen(  # noqa: S603 - this interpreter, fixed arguments
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        try:
            line = _read_line(self.process, START_BOUND)
        except BaseException:
            _reap(self.process)
            raise
        if not line.startswith("FakeBox listening on "):
            _reap(self.process)
            raise RuntimeError(f"FakeBox did not start: {line!r}")
        words = line.split()
        self.url = words[3]
        self.refresh_token = words[5] if oauth2 else None
        self._http = httpx.Client(base_url=self.url, timeout=10.0)

    def stats(self) -> dict[str, Any]:
        """FakeBox's counts (with ``invalid_grant`` and ``spent_refresh_tokens`` in ``fakebox`` mode)."""
        found: dict[str, Any] = self._http.get("/_asrun/stats" if self.oauth2 else "/_fakebox/stats").json()
        return found

    def control(self, what: str) -> bool:
        """``hold`` the next refresh's answer, ``release`` it, or ask whether one is ``held``."""
        held: bool = self._http.get(f"/_asrun/{what}").json()["held"]
        return held

    def close(self) -> None:
        self._http.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)
        _reap(self.process)

    def __enter__(self) -> Fake:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_line(process: subprocess.Popen[str], bound: float) -> str:
    """The next line ``process`` prints, waited for at most ``bound`` seconds (a reader thread)."""
    assert process.stdout is not None  # noqa: S101
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(process.stdout.readline() if process.stdout else ""))
    reader.daemon = True
    reader.start()
    reader.join(bound)
    if not lines:
        raise TimeoutError(f"no line from process {process.pid} within {bound:g} s")
    return lines[0].strip()


def _tcp_peers(ports: set[int]) -> dict[str, int]:
    """Socket inodes of established TCP connections to ``ports`` on this machine (``/proc/net/tcp``)."""
    found: dict[str, int] = {}
    with Path("/proc/net/tcp").open(encoding="ascii") as table:
        next(table, None)
        for line in table:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if fields[3] == "01" and remote_port in ports:  # ESTABLISHED
                found[fields[9]] = remote_port
    return found


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    with contextlib.suppress(OSError):  # the process has exited
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):  # the descriptor was closed meanwhile
                target = str(fd.readlink())
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    return inodes


class ConnectionWatch:
    """Samples, every `SAMPLE` s, each worker's TCP connections to the Redis ports: the most held at once, and opened.

    Read from ``/proc`` (the workers' sockets, matched to ``/proc/net/tcp``), so the driver's own
    connections, Sentinel's and replication links never count. A connection that lives less than
    a sample may be missed.
    """

    def __init__(self, ports: set[int], pids: list[int], *, memory_of: RedisServer | None = None) -> None:
        self.ports = ports
        self.pids = pids
        self.peak = dict.fromkeys(pids, 0)
        self.seen: dict[int, set[str]] = {pid: set() for pid in pids}
        self.peak_total = 0
        self.memory_of = memory_of
        self.peak_memory = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        ticks = int(JOB_BOUND * 2 / SAMPLE)
        for tick in range(ticks):
            peers = _tcp_peers(self.ports)
            total = 0
            for pid in self.pids:
                mine = _socket_inodes(pid) & peers.keys()
                self.seen[pid] |= mine
                self.peak[pid] = max(self.peak[pid], len(mine))
                total += len(mine)
            self.peak_total = max(self.peak_total, total)
            if self.memory_of is not None and tick % 4 == 0:
                with contextlib.suppress(Exception):
                    used = int(self.memory_of.info("memory")["used_memory"])
                    self.peak_memory = max(self.peak_memory, used)
            if self._stop.wait(SAMPLE):
                return

    def __enter__(self) -> ConnectionWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def summary(self) -> str:
        """``peak P (p1+p2), opened O`` over the workers."""
        peaks = "+".join(str(self.peak[pid]) for pid in self.pids)
        opened = sum(len(seen) for seen in self.seen.values())
        return f"{self.peak_total} ({peaks}), {opened}"


class EvictionWatch:
    """The keys ``server`` evicts while the block runs, by name (keyspace notifications, ``evicted`` events)."""

    def __init__(self, server: RedisServer) -> None:
        self.server = server
        self.evicted: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with self.server.admin(decode_responses=True) as client:
            listener = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
            listener.subscribe("__keyevent@0__:evicted")
            try:
                for _ in range(int(JOB_BOUND * 2 / 0.1)):
                    message = listener.get_message(timeout=0.1)
                    if message is not None and not str(message["data"]).startswith("filler:"):
                        self.evicted.append(str(message["data"]))
                    if self._stop.is_set() and message is None:
                        return
            finally:
                listener.close()

    def __enter__(self) -> EvictionWatch:
        self.server.command("CONFIG", "SET", "notify-keyspace-events", "Ee")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def summary(self) -> str:
        """What was evicted, by kind: ``lock``, ``pacing``, ``pair``... (filler keys aside)."""
        kinds: collections.Counter[str] = collections.Counter()
        for key in self.evicted:
            kind = key.split(":")[1] if key.count(":") >= 1 else key
            kinds[f"{kind}{' lock' if key.endswith(':lock') else ''}"] += 1
        return ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())) or "none of the share's keys"


class Workers:
    """Worker processes of one set-up: started, each ``ready``, let go together, awaited (bounded), reaped."""

    def __init__(self, configs: list[dict[str, Any]], directory: Path) -> None:
        self.processes: list[subprocess.Popen[str]] = []
        self._errs: list[IO[str]] = []
        directory.mkdir(parents=True, exist_ok=True)
        try:
            for n, config in enumerate(configs):
                err = (directory / f"worker-{n}.err").open("w", encoding="utf-8")
                self._errs.append(err)
                process = subprocess.Popen(  # noqa: S603 - this interpreter running this script
                    [sys.executable, __file__, "worker", json.dumps(config)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=err,
                    text=True,
                )
                self.processes.append(process)
                self._await_ready(n)
        except BaseException:
            self.close()
            raise

    def _await_ready(self, n: int) -> None:
        line = _read_line(self.processes[n], START_BOUND)
        if line != "ready":
            err = Path(self._errs[n].name).read_text(encoding="utf-8", errors="replace")[-1000:]
            raise RuntimeError(f"worker {n} did not start: {line!r}\n{err}")

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]

    def go(self) -> float:
        """Let every worker go; the monotonic time it was said."""
        for process in self.processes:
            assert process.stdin is not None  # noqa: S101
            process.stdin.write("go\n")
            process.stdin.flush()
        return time.monotonic()

    def results(self) -> list[dict[str, Any]]:
        """Each worker's report, waited for within `JOB_BOUND` s in all."""
        deadline = time.monotonic() + JOB_BOUND
        found = []
        for n, process in enumerate(self.processes):
            try:
                out, _ = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _reap(process)
                found.append({"runs": [], "error": f"worker {n} did not end within {JOB_BOUND:g} s", "log": {}})
                continue
            lines = out.strip().splitlines()
            try:
                found.append(json.loads(lines[-1]))
            except (IndexError, ValueError):
                err = Path(self._errs[n].name).read_text(encoding="utf-8", errors="replace")[-300:]
                found.append({"runs": [], "error": f"worker {n} exited {process.returncode}: {err}", "log": {}})
        return found

    def close(self) -> None:
        for process in self.processes:
            _reap(process)
        for err in self._errs:
            err.close()


def worker_configs(
    box: str,
    redis: dict[str, Any],
    *,
    ids: int,
    batch: int,
    auth: str = "ccg",
    refresh_token: str | None = None,
    prefix: str = "box-sessions",
    processes: int = 2,
    runs: int = 1,
    first: int = 10_000_000,
) -> list[dict[str, Any]]:
    """The configs of ``processes`` workers, each with ``ids`` ids of its own."""
    return [
        {
            "box": box,
            "redis": redis,
            "auth": auth,
            "refresh_token": refresh_token,
            "prefix": prefix,
            "rate": RATE,
            "batch": batch,
            "first": first + n * ids,
            "count": ids,
            "runs": runs,
        }
        for n in range(processes)
    ]


class Table:
    """The results, one line per set-up, printed as each is measured; what the workers logged, after."""

    HEAD = (
        "| row | set-up | ids terminated | failed (why) | token requests | 429s | spent refresh tokens sent "
        "| share WARNING/INFO per process | Redis connections: most at once (per process), opened | outcome "
        "| wall s (per process) |"
    )

    def __init__(self) -> None:
        self.logged: list[str] = []
        say(self.HEAD)
        say("|" + "---|" * (self.HEAD.count(" | ") + 1))

    def line(self, row: str, setup: str, job: Job, *, outcome: str) -> None:
        """Print one set-up's line from what its workers reported and what FakeBox counted."""
        results, stats = job.results, job.stats
        runs = [run for result in results for run in result["runs"]]
        terminated = sum(run["terminated"] for run in runs)
        failures: collections.Counter[str] = collections.Counter()
        for run in runs:
            failures.update(run["failures"])
        errors = [result["error"] for result in results if result["error"]]
        errors += [run["error"] for run in runs if run["error"]]
        failed = ", ".join(f"{n} {kind}" for kind, n in failures.items()) or "0"
        counts = stats.get("status_counts", {})
        distinct = sum(stats.get("distinct_terminated", {}).values())
        twice = sum(stats.get("terminated", {}).values()) - distinct
        ids = f"{terminated}/{job.total}" + (f" (Box: {twice} ids twice)" if twice else "")
        spent = str(stats["invalid_grant"]) if "invalid_grant" in stats else "-"
        logs = ", ".join(
            f"{r['log'].get('WARNING share', 0)}/{r['log'].get('INFO share', 0)}"
            + (f" +{r['log']['ERROR share']} ERROR" if r["log"].get("ERROR share") else "")
            for r in results
        )
        said = [part for part in (outcome, *sorted(set(errors))) if part]
        walls = ", ".join(f"{result.get('wall', 0.0):.1f}" for result in results)
        say(
            f"| {row} | {setup} | {ids} | {failed} | {stats.get('token_requests', '-')} | {counts.get('429', 0)} "
            f"| {spent} | {logs} | {job.connections} | {'; '.join(said) or 'ok'} | {job.wall:.1f} ({walls}) |"
        )
        for n, result in enumerate(results):
            for level, messages in result.get("samples", {}).items():
                self.logged.extend(f"{row}, {setup}, process {n + 1}, {level}: {m}" for m in messages)

    def note(self, text: str) -> None:
        """A line under the last set-up's, in the table."""
        say(f"|  | {text} |" + " |" * (self.HEAD.count(" | ") - 1))

    def close(self) -> None:
        if self.logged:
            say("\nWhat the workers logged about the share (WARNING and ERROR, the first of each):")
            for line in self.logged:
                say(f"- {line}")


@contextlib.contextmanager
def started(*servers: RedisServer) -> Iterator[None]:
    """Start ``servers`` (in order); kill and reap them all at the end."""
    try:
        for server in servers:
            server.start()
        yield
    finally:
        kill_all(servers)


class Job:
    """What one set-up's workers did: their reports, FakeBox's counts after them, connections, wall time."""

    def __init__(
        self, results: list[dict[str, Any]], stats: dict[str, Any], total: int, connections: str, wall: float
    ) -> None:
        self.results = results
        self.stats = stats
        self.total = total
        self.connections = connections
        self.wall = wall


def run_job(
    fake: Fake,
    configs: list[dict[str, Any]],
    directory: Path,
    ports: set[int],
    *,
    during: Callable[[float], str] | None = None,
    memory_of: RedisServer | None = None,
) -> tuple[Job, str]:
    """Run ``configs``'s workers together against ``fake``; ``during(go_time)`` acts meanwhile and says what it did."""
    directory.mkdir(parents=True, exist_ok=True)
    workers = Workers(configs, directory)
    try:
        with ConnectionWatch(ports, workers.pids, memory_of=memory_of) as watch:
            began = workers.go()
            noted = during(began) if during is not None else ""
            results = workers.results()
            wall = time.monotonic() - began
    finally:
        workers.close()
    if memory_of is not None:
        limit = int(memory_of.info("memory")["maxmemory"])
        noted = f"used_memory at most {watch.peak_memory / 2**20:.2f} MB of {limit / 2**20:.0f} MB"
    total = sum(config["count"] for config in configs)
    return Job(results, fake.stats(), total, watch.summary(), wall), noted


def next_process(fake: Fake, url: str, directory: Path) -> str:
    """A later process started as the workers were (the user's first refresh token): how its 20 ids went."""
    before = fake.stats()
    assert fake.refresh_token is not None  # noqa: S101
    [config] = worker_configs(
        fake.url, {"kind": "url", "url": url}, ids=20, batch=5, auth="oauth2", refresh_token=fake.refresh_token,
        processes=1, first=20_000_000,
    )  # fmt: skip
    workers = Workers([config], directory)
    try:
        workers.go()
        [result] = workers.results()
    finally:
        workers.close()
    runs = result["runs"]
    done = sum(run["terminated"] for run in runs)
    error = result["error"] or next((run["error"] for run in runs if run["error"]), None)
    after = fake.stats()
    spent = after["invalid_grant"] - before["invalid_grant"]
    return (
        f"the next process (started with the first refresh token): {done}/20"
        + (f", {error}" if error else "")
        + f", {spent} spent refresh tokens sent"
    )


def wait_for(condition: Callable[[], bool], bound: float, what: str) -> None:
    """Poll ``condition`` every 20 ms for at most ``bound`` s."""
    for _ in range(int(bound / 0.02) + 1):
        if condition():
            return
        time.sleep(0.02)
    raise TimeoutError(f"{what}: not within {bound:g} s")


# -- the rows -----------------------------------------------------------------------------------


@attrs.frozen
class Plan:
    """What every row runs with: the Redis binaries, ids per worker, ids per request, OAuth 2.0 tokens' life."""

    server: str
    cli: str
    ids: int
    batch: int
    lifetime: float


def fill_across_a_refresh(server: RedisServer, fake: Fake, began: float, *, ttl: int | None, lifetime: float) -> str:
    """Fill ``server`` with another application's keys while Box holds the next refresh's answer `HOLD_FULL` s.

    The other application writes 16 new keys of 8 KB every 50 ms, from the first refusal (``OOM``,
    keys without a time to live: Redis cannot evict them) or from Redis's limit on (``ttl``: a
    cache, whose keys Redis evicts, and which reads its keys as it writes: ``TOUCH``, so that they
    are recently used), until the held answer is let go, or until a token's ``lifetime`` passed
    without a refresh (the workers' calls failed meanwhile, or they have ended). Under
    ``volatile-lru`` Redis may evict any key with a time to live meanwhile: the share's locks,
    pacing and tokens (the pair has none). The keys are ``filler:*``, dropped after.
    """
    fake.control("hold")
    value = b"x" * FILLER_SIZE
    written = refused = 0
    held_at = None
    with server.admin() as client:

        def write(count: int) -> bool:
            nonlocal written, refused
            pipe = client.pipeline(transaction=False)
            for n in range(written + refused, written + refused + count):
                pipe.set(f"filler:app:{n}", value, ex=ttl)
            if ttl is not None and written:  # a cache is read too: its keys are recently used, Redis's LRU sees
                pipe.touch(*(f"filler:app:{n}" for n in range(max(0, written - 1024), written)))
            answers = pipe.execute(raise_on_error=False)[:count]
            oom = sum(1 for answer in answers if isinstance(answer, redis.exceptions.OutOfMemoryError))
            written, refused = written + len(answers) - oom, refused + oom
            return oom > 0

        limit = int(server.info("memory")["maxmemory"])
        for _ in range(4 * limit // FILLER_SIZE // 16):  # up to the limit: four times its worth at most
            if write(16) or (ttl is not None and written * FILLER_SIZE >= limit):
                break
        for _ in range(int(JOB_BOUND / 0.05)):
            now = time.monotonic()
            if held_at is None and fake.control("held"):
                held_at = now
            if (held_at is not None and now >= held_at + HOLD_FULL) or now >= began + FILL_AT + lifetime:
                break
            time.sleep(0.05)
            write(16)
    fake.control("release")
    full_for = time.monotonic() - (began + FILL_AT)
    kept = "kept" if not missing(server, [PAIR]) else "LOST"
    drop_filler(server)
    held = f"a refresh held at Box {HOLD_FULL:g} s meanwhile" if held_at is not None else "no refresh came meanwhile"
    return (
        f"Redis filled from {FILL_AT:g} s for {full_for:.1f} s ({written} keys written, {refused} refused OOM), "
        f"{held}; pair {kept}"
    )


def row_cluster(table: Table, plan: Plan, tmp: Path) -> None:
    """A 3-master cluster: the caller's RedisCluster, one node's URL with cluster=True, and without it."""
    cluster = RedisClusterNodes(plan.server, plan.cli, tmp / "cluster")
    cluster.start()
    try:
        ports = {node.port for node in cluster.nodes}
        nodes = [["127.0.0.1", node.port] for node in cluster.nodes]
        setups: tuple[tuple[str, dict[str, Any]], ...] = (
            ("client=RedisCluster(startup_nodes=...)", {"kind": "cluster-client", "nodes": nodes}),
            ("one node's URL, cluster=True", {"kind": "url", "url": cluster.url, "cluster": True}),
            ("one node's URL, cluster not said", {"kind": "url", "url": cluster.url}),
        )
        for n, (setup, redis) in enumerate(setups):
            with Fake(oauth2=False) as fake:
                configs = worker_configs(fake.url, redis, ids=plan.ids, batch=plan.batch, prefix=f"asrun-cluster-{n}")
                job, _ = run_job(fake, configs, tmp / f"setup-{n}", ports)
            # Where the share's keys (a token, pacing) ended up: without cluster mode only the URL's node is written.
            homes = collections.Counter(
                "the URL's node" if port == cluster.nodes[0].port else "other nodes"
                for port in cluster.keys(f"asrun-cluster-{n}:*").values()
            )
            keys = ", ".join(f"{count} on {home}" for home, count in sorted(homes.items())) or "none"
            table.line("Cluster (3 masters)", setup, job, outcome=f"share's keys: {keys}")
    finally:
        cluster.kill()


def row_eviction(table: Table, plan: Plan, tmp: Path) -> None:
    """OAuth 2.0 workers while a Redis of 4 MB is filled: the pair kept (volatile-lru) or evicted (allkeys-lru)."""
    setups = (
        ("volatile-lru", "filled by keys without a TTL", None),
        ("volatile-lru", "filled by a cache (keys with a TTL, read)", 3600),
        ("allkeys-lru", "filled until the pair is evicted", None),
    )
    for n, (policy, filled_by, ttl) in enumerate(setups):
        directory = tmp / f"{policy}-{n}"
        server = RedisServer(plan.server, directory / "redis", maxmemory_args("4mb", policy))
        with started(server), Fake(oauth2=True, token_lifetime=plan.lifetime) as fake:

            def pressure(
                began: float,
                server: RedisServer = server,
                policy: str = policy,
                fake: Fake = fake,
                ttl: int | None = ttl,
            ) -> str:
                wait_for(lambda: not missing(server, [PAIR]), 10.0, "the pair saved")
                time.sleep(max(0.0, began + FILL_AT - time.monotonic()))  # the first refresh saved before
                if policy == "volatile-lru":
                    return fill_across_a_refresh(server, fake, began, ttl=ttl, lifetime=plan.lifetime)  # the one at 6 s
                filling = time.monotonic()
                filled = fill_memory(server, watched=(PAIR,))
                drop_filler(server)
                if PAIR in filled.evicted:
                    return f"pair evicted at {filling - began:.1f} s ({filled.written} filler keys), filler dropped"
                return f"pair NOT evicted ({filled.written} filler keys)"

            configs = worker_configs(
                fake.url, {"kind": "url", "url": server.url}, ids=2 * plan.ids, batch=plan.batch, auth="oauth2",
                refresh_token=fake.refresh_token,
            )  # fmt: skip
            with EvictionWatch(server) as evictions:
                job, noted = run_job(fake, configs, directory, {server.port}, during=pressure)
            granted = f"{job.stats['spent_refresh_tokens']} refreshes granted"
            later = next_process(fake, server.url, directory / "next")
            noted = f"{noted}; evicted: {evictions.summary()}; {granted}; {later}"
            table.line("Eviction (OAuth 2.0)", f"maxmemory 4mb, {policy}, {filled_by}", job, outcome=noted)
            if policy == "allkeys-lru":  # evicted while no process runs: nobody holds the pair to write back
                filled = fill_memory(server, watched=(PAIR,))
                drop_filler(server)
                gone = "evicted" if PAIR in filled.evicted else "NOT evicted"
                idle = next_process(fake, server.url, directory / "idle")
                table.note(f"{policy}, the pair {gone} while no process ran: {idle}")


def row_restart(table: Table, plan: Plan, tmp: Path) -> None:
    """OAuth 2.0 workers; Redis killed (-9) while Box holds a refresh's answer, back 2 s later; with and without AOF."""
    for appendonly in (False, True):
        name = "appendonly yes" if appendonly else "no persistence"
        directory = tmp / ("aof" if appendonly else "none")
        server = RedisServer(plan.server, directory / "redis", appendonly=appendonly)
        with started(server), Fake(oauth2=True, token_lifetime=plan.lifetime) as fake:

            def restart(began: float, server: RedisServer = server, fake: Fake = fake) -> str:
                wait_for(lambda: not missing(server, [PAIR]), 10.0, "the pair saved")
                time.sleep(max(0.0, began + HOLD_AFTER - time.monotonic()))
                fake.control("hold")
                wait_for(lambda: fake.control("held"), plan.lifetime, "a refresh held at FakeBox")
                killed = time.monotonic()
                server.kill()  # kill -9 while Box holds the refresh's answer: it has spent the old refresh token
                fake.control("release")
                time.sleep(RESTART_GAP)
                server.start()
                return (
                    f"kill -9 at {killed - began:.1f} s during a refresh, back {time.monotonic() - killed:.1f} s later"
                )

            configs = worker_configs(
                fake.url, {"kind": "url", "url": server.url}, ids=2 * plan.ids, batch=plan.batch, auth="oauth2",
                refresh_token=fake.refresh_token,
            )  # fmt: skip
            job, noted = run_job(fake, configs, directory, {server.port}, during=restart)
            granted = f"{job.stats['spent_refresh_tokens']} refreshes granted"
            later = next_process(fake, server.url, directory / "next")
            table.line("Restart in a refresh (OAuth 2.0)", name, job, outcome=f"{noted}; {granted}; {later}")


def row_refusals(table: Table, plan: Plan, tmp: Path) -> None:
    """CCG workers on a Redis that answers reads, refuses writes: a replica, a full noeviction, ACLs less a command."""
    for kind in ("read-only replica", "noeviction, full (OOM)", "ACL without time", "ACL without hincrby"):
        directory = tmp / kind.replace(" ", "-").replace(",", "").replace("(", "").replace(")", "")
        servers: list[RedisServer] = []
        try:
            if kind == "read-only replica":
                pair = ReplicatedPair(plan.server, directory)
                servers.append(pair.master)
                pair.start()
                servers.append(pair.replica)
                url, port = pair.replica.url, pair.replica.port
            else:
                args = maxmemory_args("4mb", "noeviction") if "OOM" in kind else None
                server = RedisServer(plan.server, directory / "redis", args)
                servers.append(server)
                server.start()
                if "OOM" in kind:
                    fill_memory(server)
                    url = server.url
                else:
                    url = add_acl_user(server, without=(kind.rsplit(" ", 1)[1],))
                port = server.port
            with Fake(oauth2=False) as fake:
                configs = worker_configs(fake.url, {"kind": "url", "url": url}, ids=plan.ids, batch=plan.batch)
                job, noted = run_job(fake, configs, directory, {port})
            table.line("Refusals", kind, job, outcome=noted)
        finally:
            kill_all(servers)


def row_event_loops(table: Table, plan: Plan, tmp: Path) -> None:
    """One RedisShare per process, made outside any loop, used by three asyncio.run calls in turn."""
    server = RedisServer(plan.server, tmp / "redis")
    with started(server), Fake(oauth2=False) as fake:
        configs = worker_configs(fake.url, {"kind": "url", "url": server.url}, ids=plan.ids, batch=plan.batch, runs=3)
        job, _ = run_job(fake, configs, tmp, {server.port})
    runs = "; ".join(
        f"process {n + 1}: "
        + ", ".join(
            f"{run['terminated']}/{run['ids']}" + (f" {run['error']}" if run["error"] else "") for run in result["runs"]
        )
        for n, result in enumerate(job.results)
    )
    table.line("Several asyncio.run", "one RedisShare, 3 runs per process", job, outcome=f"ids per run: {runs}")


def row_sentinel(table: Table, plan: Plan, tmp: Path) -> None:
    """A master, a replica and a Sentinel; SENTINEL FAILOVER when a fifth of the ids are done."""
    group = SentinelGroup(plan.server, tmp / "sentinel")
    group.start()
    try:
        data_ports = {node.port for node in group.nodes}
        with Fake(oauth2=False) as fake:
            redis = {"kind": "sentinel", "sentinels": group.sentinels, "name": group.name}
            # Smaller batches: the job outlasts Sentinel's demotion of the old master (about 10 s).
            configs = worker_configs(fake.url, redis, ids=plan.ids, batch=max(1, plan.batch // 2))

            def failover(began: float) -> str:
                wait_for(
                    lambda: sum(fake.stats()["terminated"].values()) >= 2 * plan.ids // 5, JOB_BOUND / 2, "a fifth done"
                )
                old = group.master()
                scripts = _evalsha_calls(old)
                start = time.monotonic()
                group.failover()
                named = time.monotonic()
                group.wait_demoted(old)
                demoted = time.monotonic()
                on_old = _evalsha_calls(old) - scripts
                return (
                    f"failover at {start - began:.1f} s, new master named {named - start:.1f} s later; the old "
                    f"master ran {on_old} of the share's scripts until demoted {demoted - start:.1f} s after the "
                    "failover began"
                )

            job, noted = run_job(fake, configs, tmp / "job", data_ports, during=failover)
        table.line("Sentinel", f"client=Sentinel(...).master_for(...), batches of {max(1, plan.batch // 2)}", job,
                   outcome=noted)  # fmt: skip
    finally:
        group.kill()


def _evalsha_calls(server: RedisServer) -> int:
    """Scripts ``server`` has run by SHA since it started (``INFO commandstats``)."""
    stats = server.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


def row_valkey(table: Table, plan: Plan, tmp: Path) -> None:
    """valkey-py's client, built as its users build it, given to RedisShare(client=...)."""
    server = RedisServer(plan.server, tmp / "redis")
    with started(server), Fake(oauth2=False) as fake:
        configs = worker_configs(fake.url, {"kind": "valkey", "url": server.url}, ids=plan.ids, batch=plan.batch)
        job, noted = run_job(fake, configs, tmp, {server.port})
    table.line("Valkey client", "client=valkey.asyncio.Valkey.from_url(...)", job, outcome=noted)


def row_maxmemory(table: Table, plan: Plan, tmp: Path) -> None:
    """A 2 MB Redis (noeviction) and two processes with 16 batches in flight each (the bulk default)."""
    server = RedisServer(plan.server, tmp / "redis", maxmemory_args("2mb", "noeviction"))
    with started(server), Fake(oauth2=False) as fake:
        configs = worker_configs(fake.url, {"kind": "url", "url": server.url}, ids=plan.ids, batch=plan.batch)
        job, noted = run_job(fake, configs, tmp, {server.port}, memory_of=server)
    table.line("maxmemory 2 MB", "noeviction, 16 batches in flight", job, outcome=noted)


RUNNERS: dict[str, Callable[[Table, Plan, Path], None]] = {
    "cluster": row_cluster,
    "eviction": row_eviction,
    "restart": row_restart,
    "refusals": row_refusals,
    "event-loops": row_event_loops,
    "sentinel": row_sentinel,
    "valkey": row_valkey,
    "maxmemory": row_maxmemory,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode")
    worker_mode = sub.add_parser("worker", help="(internal) one worker process")
    worker_mode.add_argument("config")
    fakebox_mode = sub.add_parser("fakebox", help="(internal) FakeBox for the OAuth 2.0 rows")
    fakebox_mode.add_argument("--rate-limit", type=float)
    fakebox_mode.add_argument("--latency", type=float, default=0.0)
    fakebox_mode.add_argument("--jitter", type=float, default=0.0)
    fakebox_mode.add_argument("--token-lifetime", type=float, default=3600.0)
    parser.add_argument("--only", nargs="+", choices=ROWS, default=list(ROWS), help="rows to run (default: all)")
    parser.add_argument("--ids", type=int, default=300, help="ids per worker process (300)")
    parser.add_argument("--batch", type=int, default=5, help="ids per request (5; the Sentinel row half of it)")
    parser.add_argument(
        "--token-lifetime",
        type=float,
        default=OAUTH2_LIFETIME,
        help=f"OAuth 2.0 rows: seconds a token lives ({OAUTH2_LIFETIME:g})",
    )
    parser.add_argument("--keep", type=Path, help="keep every worker's log lines (worker-N.err) and Redis's logs here")
    args = parser.parse_args()
    if args.mode == "worker":
        worker(json.loads(args.config))
        return
    if args.mode == "fakebox":
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve_fakebox(args))
        return
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None or not Path("/proc/net/tcp").exists():
        raise SystemExit("redis_as_run needs redis-server and redis-cli on PATH, and Linux's /proc")
    say(
        f"Two worker processes x {args.ids} ids, batches of {args.batch}, each paced at {RATE:,.0f} requests a "
        f"minute, against FakeBox allowing {RATE:,.0f} a minute ({LATENCY * 1000:.0f} +- {JITTER * 1000:.0f} ms); "
        f"CCG; the OAuth 2.0 rows twice the ids, with access tokens of {args.token_lifetime:g} s.\n"
    )
    plan = Plan(server=server, cli=cli, ids=args.ids, batch=args.batch, lifetime=args.token_lifetime)
    table = Table()
    began = time.monotonic()
    with contextlib.ExitStack() as stack:
        if args.keep is None:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="redis-as-run-"))
        else:
            args.keep.mkdir(parents=True, exist_ok=True)
            tmp = str(tempfile.mkdtemp(prefix="redis-as-run-", dir=args.keep))
            say(f"Worker and Redis logs are kept under {tmp}\n")
        for row in args.only:
            directory = Path(tmp) / row
            directory.mkdir()
            try:
                RUNNERS[row](table, plan, directory)
            except Exception as exc:  # noqa: BLE001 - a set-up that could not be measured says why; the rest go on
                table.note(f"{row} not measured: {type(exc).__name__}: {exc}")
    table.close()
    say(f"\nAll rows in {time.monotonic() - began:.0f} s.")


if __name__ == "__main__":
    main()
