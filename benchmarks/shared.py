"""Benchmark part ``shared``: four processes of one Box app, pacing through Redis against pacing alone.

Four processes, each terminating a quarter of 16,000 user ids in batches of 100 (160 requests),
send to one FakeBox process allowing 1,000 requests a minute (Box's documented limit), each
paced at that rate by its own `RateLimit`. With ``BoxClient(shared=RedisShare(...))`` they share
one token, one schedule and one cool-down; alone, each paces as if it were the only one. The
figures come from FakeBox. A ``redis-server`` on 127.0.0.1 (a free port, no persistence) is
started for the run and killed after it.
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
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from box_sessions.redis._pacing import _GIVE_BACK, _RECORD, _RESERVE

#: FakeBox's limit and each client's pacing, in requests a minute.
RATE = 1000.0
PROCESSES = 4
BATCH = 100
#: Seconds any process may take before the run is abandoned.
BOUND = 300.0
#: The SHA-1 digests by which clients run the pacing scripts (EVALSHA).
PACING_SCRIPTS = {hashlib.sha1(script.encode()).hexdigest() for script in (_RESERVE, _GIVE_BACK, _RECORD)}  # noqa: S324 - Redis names scripts by SHA-1

WORKER = """
import asyncio, json, sys

import box_sessions
from box_sessions.redis import RedisShare


async def main() -> None:
    config = json.loads(sys.argv[1])
    share = RedisShare(config["redis"]) if config["redis"] else None
    auth = box_sessions.CCGAuth(client_id="fake-client-id", client_secret="fake-client-secret", enterprise_id="1")
    pacing = box_sessions.RateLimit(requests_per_minute=config["rate"])
    client = box_sessions.BoxClient(auth, base_url=config["url"], rate_limit=pacing, shared=share)
    ids = [str(10_000_000 + i) for i in range(config["first"], config["first"] + config["count"])]
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


@contextmanager
def redis_server() -> Iterator[str]:
    """A redis-server on 127.0.0.1 for the run: its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("the shared benchmark needs redis-server on PATH")
    port = _free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL)  # noqa: S603 - redis-server from PATH, fixed arguments
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("redis-server did not answer within 10 s")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.kill()
        proc.wait(10)


def run_workers(script: Path, url: str, redis: str | None, ids: int) -> float:
    """Start the processes, let them go together, wait for all; the wall time from go to the last end."""
    share = ids // PROCESSES
    procs = []
    for n in range(PROCESSES):
        config = {"url": url, "redis": redis, "rate": RATE, "first": n * share, "count": share, "batch": BATCH}
        proc = subprocess.Popen(  # noqa: S603 - this interpreter running our own script
            [sys.executable, str(script), json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None  # noqa: S101
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
    return time.perf_counter() - started


def shared_rows(server: Callable[..., AbstractContextManager[Any]], *, quick: bool) -> list[dict[str, Any]]:
    """Run the job shared through Redis and alone; one row each, printed as it comes.

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
    with redis_server() as redis, tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "worker.py"
        script.write_text(WORKER, encoding="utf-8")
        for name, url in (("shared through Redis", redis), ("each process alone", None)):
            port = int(redis.rsplit(":", 1)[1].split("/")[0])
            with (
                server(rate_limit=RATE, latency=0.15, jitter=0.05) as fake,
                Monitor(port, Path(tmp) / "monitor") as seen,
            ):
                wall = run_workers(script, fake.url, url, ids)
                stats = fake.stats()
            counts = stats["status_counts"]
            requests = sum(counts.values()) - stats["token_requests"]
            row = {
                "pacing": name,
                "wall_s": round(wall, 1),
                "requests": requests,
                "429s": counts.get("429", 0),
                "429_share": round(counts.get("429", 0) / requests, 4) if requests else 0.0,
                "token_requests": stats["token_requests"],
                "lost": ids - sum(stats["distinct_terminated"].values()),
                "allowed_rate_used": round(needed / (RATE / 60) / wall, 3),
                "redis_pacing_per_request": round(seen.pacing / requests, 2) if url and requests else 0.0,
                "redis_commands_per_request": round(seen.commands / requests, 2) if url and requests else 0.0,
            }
            redis_figures = f"{row['redis_pacing_per_request']}, {row['redis_commands_per_request']}" if url else "-"
            print(  # noqa: T201 - a benchmark prints its figures
                f"| {name} | {row['wall_s']} | {requests} | {row['429s']} ({row['429_share']:.1%}) | "
                f"{row['token_requests']} | {row['lost']} | {row['allowed_rate_used']:.2f} | {redis_figures} |",
                flush=True,
            )
            rows.append(row)
            if url:
                print(f"Redis commands by kind: {dict(seen.kinds.most_common())}")  # noqa: T201
    return rows
