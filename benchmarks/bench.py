"""Benchmarks: box_sessions against Box's official SDK, a hand-written asyncio loop and bare httpx.

Every system runs the same job against a fresh FakeBox process on 127.0.0.1 (``server.py`` beside
this file), which counts what it receives; the figures come from the server, so a system that
finishes fast by losing ids shows it. Run with ``nox -s bench`` (installs ``boxsdk`` 10.x there
only). ``--only PART`` runs one part (``throughput``, ``cpu`` with OpenTelemetry's cost,
``memory``, ``single``, ``shared``); ``--profile`` and ``--ours-only`` narrow the throughput part;
``--quick`` runs a smaller job for a smoke test. Every loop is bounded in count and time, and every
server listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import logging
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import tenacity
from shared import shared_rows  # beside this script, which Python puts first on sys.path
from telemetry_cost import bulk_call, describe, telemetry_cost

import box_sessions

TOKEN = "fake-developer-token"  # noqa: S105 - FakeBox's well-known developer token, not a secret
BATCH = 100


SERVER = Path(__file__).with_name("server.py")


class Server:
    """A FakeBox process on a free loopback port; ``schedule="8:400,20:1000"`` changes its rate limit during the job."""

    def __init__(self, **options: Any) -> None:
        args = [sys.executable, str(SERVER), "--seed", "1"]
        for key, value in options.items():
            if value is not None:
                args += [f"--{key.replace('_', '-')}", str(value)]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)  # noqa: S603 - our own CLI
        assert self.proc.stdout is not None  # noqa: S101
        self.url = self.proc.stdout.readline().rsplit(" ", 1)[-1].strip()

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = httpx.get(f"{self.url}/_fakebox/stats").json()
        return stats

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def job(users: int, logins: int, groups: int) -> dict[str, list[str]]:
    return {
        "user_ids": [str(10_000_000 + i) for i in range(users)],
        "user_logins": [f"user{i}@example.com" for i in range(logins)],
        "group_ids": [str(500_000 + i) for i in range(groups)],
    }


def batches(work: dict[str, list[str]]) -> Iterator[tuple[str, dict[str, list[str]]]]:
    """The same requests every system sends: ids and logins per 100, then groups per 100."""
    for field in ("user_ids", "user_logins"):
        values = work[field]
        for i in range(0, len(values), BATCH):
            chunk = values[i : i + BATCH]
            yield (
                "users",
                {"user_ids": chunk if field == "user_ids" else [], "user_logins": chunk if field != "user_ids" else []},
            )
    for i in range(0, len(work["group_ids"]), BATCH):
        yield "groups", {"group_ids": work["group_ids"][i : i + BATCH]}


# -- the four systems --------------------------------------------------------------------------


def run_box_sessions(url: str, work: dict[str, list[str]]) -> None:
    async def main() -> None:
        async with box_sessions.BoxClient(box_sessions.DeveloperTokenAuth(TOKEN), base_url=url) as client:
            await client.session_termination.terminate(
                user_ids=work["user_ids"], user_logins=work["user_logins"], group_ids=work["group_ids"]
            )

    asyncio.run(main())


def _official_client(url: str) -> Any:
    from box_sdk_gen import BoxClient, BoxDeveloperTokenAuth  # noqa: PLC0415 - bench-only dependency
    from box_sdk_gen.networking.base_urls import BaseUrls  # noqa: PLC0415

    return BoxClient(auth=BoxDeveloperTokenAuth(token=TOKEN)).with_custom_base_urls(BaseUrls(base_url=url))


def _official_send(client: Any, kind: str, body: dict[str, list[str]]) -> None:
    try:
        if kind == "users":
            client.session_termination.terminate_users_sessions(body["user_ids"], body["user_logins"])
        else:
            client.session_termination.terminate_groups_sessions(body["group_ids"])
    except Exception:  # noqa: BLE001, S110 - a failed batch is counted as lost ids by the server's figures
        pass


def run_official_loop(url: str, work: dict[str, list[str]]) -> None:
    client = _official_client(url)
    for kind, body in batches(work):
        _official_send(client, kind, body)


def run_official_threads(url: str, work: dict[str, list[str]]) -> None:
    client = _official_client(url)
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda kb: _official_send(client, *kb), batches(work)))


def run_handwritten(url: str, work: dict[str, list[str]]) -> None:
    """What a user would write without us: asyncio + httpx + tenacity, gather everything."""

    async def main() -> None:
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:

            @tenacity.retry(stop=tenacity.stop_after_attempt(5), wait=tenacity.wait_exponential(max=30))
            async def send(kind: str, body: dict[str, list[str]]) -> None:
                response = await http.post(f"/2.0/{kind}/terminate_sessions", json=body, timeout=30)
                if response.status_code == 429 or response.status_code >= 500:
                    response.raise_for_status()

            results = await asyncio.gather(*(send(k, b) for k, b in batches(work)), return_exceptions=True)
            del results  # failures show up as lost ids in the server's figures

    asyncio.run(main())


SYSTEMS: dict[str, Callable[[str, dict[str, list[str]]], None]] = {
    "box_sessions (defaults)": run_box_sessions,
    "boxsdk 10.x, plain loop": run_official_loop,
    "boxsdk 10.x, 16 threads": run_official_threads,
    "asyncio + httpx + tenacity": run_handwritten,
}

#: The server's options and the job (user ids, logins, group ids) of each throughput profile.
PROFILES: dict[str, dict[str, Any]] = {
    "documented rate (1,000/min)": {"rate_limit": 1000},
    "+ 1% 5xx, 0.5% stalled answers": {"rate_limit": 1000, "error_rate": 0.01, "stall_rate": 0.005},
    "silently half the rate (500/min)": {"rate_limit": 500},
    # Box lowers the limit 8 s into the job and lifts it at 20 s; the job outlasts the low phase.
    "limit drops to 400/min and comes back": {"rate_limit": 1000, "schedule": "8:400,20:1000", "job": (50_000, 0, 0)},
}
PROFILE_IDS = {"documented": 0, "faults": 1, "half": 2, "drop": 3}


def ideal_seconds(requests: int, rate_limit: float, schedule: str | None) -> float:
    """Seconds to send ``requests`` at the rate the server allows at each moment, with no credit for its burst."""
    steps = [(0.0, rate_limit)]
    for part in filter(None, (schedule or "").split(",")):
        at, _, per_minute = part.partition(":")
        steps.append((float(at), float(per_minute)))
    steps.append((math.inf, steps[-1][1]))
    sent = 0.0
    for (start, rate), (end, _) in itertools.pairwise(steps):
        if sent + (end - start) * rate / 60 >= requests:
            return start + (requests - sent) / (rate / 60)
        sent += (end - start) * rate / 60
    raise AssertionError("unreachable: the last step never ends")


def throughput(
    work: dict[str, list[str]], systems: list[str], profiles: list[str], scale: float
) -> list[dict[str, Any]]:
    rows = []
    for profile in profiles:
        options = dict(PROFILES[profile])
        job_size = options.pop("job", None)
        job_work = work if job_size is None else job(*(int(n * scale) for n in job_size))
        needed = sum(1 for _ in batches(job_work))
        total_ids = sum(len(v) for v in job_work.values())
        for name in systems:
            with Server(latency=0.15, jitter=0.05, stall_seconds=10, **options) as server:
                started = time.perf_counter()
                SYSTEMS[name](server.url, job_work)
                wall = time.perf_counter() - started
                stats = server.stats()
            counts = stats["status_counts"]
            requests = sum(counts.values())
            terminated = sum(stats["distinct_terminated"].values())
            ideal = ideal_seconds(needed, options["rate_limit"], options.get("schedule"))
            rows.append(
                {
                    "profile": profile,
                    "system": name,
                    "wall_s": round(wall, 1),
                    "requests": requests,
                    "429s": counts.get("429", 0),
                    "429_share": round(counts.get("429", 0) / requests, 4) if requests else 0.0,
                    "retries": requests - needed,
                    "terminated": terminated,
                    "lost": total_ids - terminated,
                    "ideal_over_wall": round(ideal / wall, 3),
                }
            )
            print_row(rows[-1])
    return rows


def print_row(row: dict[str, Any]) -> None:
    print(  # noqa: T201 - a benchmark prints its figures
        f"| {row['profile']} | {row['system']} | {row['wall_s']} | {row['requests']:,} | {row['429s']:,} "
        f"({row['429_share']:.1%}) | {row['retries']:,} | {row['terminated']:,} | {row['lost']:,} | "
        f"{row['ideal_over_wall']:.2f} |",
        flush=True,
    )


# -- cost of the layer ---------------------------------------------------------------------------


#: Rounds of each system in the ``cpu`` part: on a shared machine one round's CPU time moves by
#: 10 to 30%, and two rounds (November's method) often left both of a system's rounds high.
CPU_ROUNDS = 5


def cpu_cost(requests: int) -> dict[str, Any]:
    """CPU seconds per 1,000 requests: the bulk call vs a bare httpx loop, same bodies, same server."""
    work = {"user_ids": [str(10_000_000 + i) for i in range(requests * BATCH)]}
    bodies = [body for _, body in batches({**work, "user_logins": [], "group_ids": []})]
    result: dict[str, list[float]] = {}
    # What the earlier parts left in this process (the official SDK's modules, the jobs' ids) is
    # no part of either system: keep the garbage collector from walking it during the rounds.
    gc.collect()
    gc.freeze()
    with Server() as server:

        async def bulk() -> None:
            await bulk_call(server.url, work["user_ids"])

        async def bare() -> None:
            limits = asyncio.Semaphore(16)
            async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:

                async def post(body: dict[str, list[str]]) -> None:
                    async with limits:
                        (await http.post("/2.0/users/terminate_sessions", json=body)).raise_for_status()

                await asyncio.gather(*(post(b) for b in bodies))

        for _ in range(CPU_ROUNDS):
            for name, run in (("bare httpx", bare), ("box_sessions", bulk)):
                started = time.process_time()
                asyncio.run(run())
                result.setdefault(name, []).append((time.process_time() - started) / requests * 1000)
    # Rounds interleaved, to even out warm-up and the machine's drift; the lowest of each system
    # counts (what the code costs when nothing else takes the CPU from it).
    floor, ours = min(result["bare httpx"]), min(result["box_sessions"])
    return {
        "bare_httpx_cpu_s_per_1000": round(floor, 3),
        "box_sessions_cpu_s_per_1000": round(ours, 3),
        "ratio": round(ours / floor, 2),
        "rounds": {name: [round(seconds, 2) for seconds in rounds] for name, rounds in result.items()},
    }


# -- single calls in a web app ----------------------------------------------------------------


#: Wall-clock bound of one round of single calls; bare httpx at 5,000 calls does not finish in it.
SINGLE_TIME_LIMIT = 120.0


async def _single_ours(url: str, calls: int) -> None:
    async with box_sessions.BoxClient(box_sessions.DeveloperTokenAuth(TOKEN), base_url=url, rate_limit=None) as client:
        manager = client.session_termination
        await asyncio.gather(*(manager.terminate_users_sessions(user_ids=[str(10**7 + i)]) for i in range(calls)))


async def _single_bare(url: str, calls: int) -> None:
    # httpx's defaults (a pool of 100), with a timeout long enough that the wait for the pool is measured.
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:

        async def post(i: int) -> None:
            body = {"user_ids": [str(10**7 + i)], "user_logins": []}
            response = await http.post("/2.0/users/terminate_sessions", json=body, timeout=SINGLE_TIME_LIMIT)
            response.raise_for_status()

        await asyncio.gather(*(post(i) for i in range(calls)))


SINGLE_ROUNDS: dict[str, Callable[[str, int], Coroutine[Any, Any, None]]] = {
    "box_sessions": _single_ours,
    "bare httpx": _single_bare,
}


def single_round(system: str, calls: int, url: str) -> None:
    """One round, in this fresh process: print the CPU seconds it took."""
    started = time.process_time()
    asyncio.run(SINGLE_ROUNDS[system](url, calls))
    print(f"{time.process_time() - started:.3f}")  # noqa: T201 - read by `single_calls`


def single_calls(counts: tuple[int, ...]) -> list[dict[str, Any]]:
    """CPU of ``n`` concurrent single calls on one shared client (pacing off) beside bare httpx doing the same posts.

    As a FastAPI app does: each request of the app awaits one `terminate_users_sessions` on the
    app's one client. The server answers at once (no latency, no rate limit), so what is measured
    is the client's own cost. Each round runs in a fresh process, killed after `SINGLE_TIME_LIMIT`.
    """
    rows = []
    with Server() as server:
        for n in counts:
            row: dict[str, Any] = {"calls": n}
            for system in SINGLE_ROUNDS:
                args = [sys.executable, __file__, "--single-round", system, str(n), server.url]
                try:
                    done = subprocess.run(args, capture_output=True, text=True, timeout=SINGLE_TIME_LIMIT, check=True)  # noqa: S603
                except subprocess.TimeoutExpired:
                    row[system] = None
                else:
                    row[system] = float(done.stdout.split()[-1])
            ours, bare = row["box_sessions"], row["bare httpx"]
            row["ratio"] = None if ours is None or bare is None else round(ours / bare, 2)
            rows.append(row)
            print(  # noqa: T201
                f"| {n:,} | {ours if ours is not None else f'over {SINGLE_TIME_LIMIT:g} s of wall time'} | "
                f"{bare if bare is not None else f'over {SINGLE_TIME_LIMIT:g} s of wall time'} | "
                f"{'-' if row['ratio'] is None else row['ratio']} |",
                flush=True,
            )
    return rows


#: Runs the command line and, at exit, writes its own peak RSS (``VmHWM``, in kB) to stderr. A child's
#: ``ru_maxrss`` would not do: Linux carries the parent's peak across fork and exec into it, so it
#: measured the benchmark process itself.
RSS_PROBE = """
import atexit, runpy, sys
def report():
    with open("/proc/self/status") as status:
        sys.stderr.write(next(line for line in status if line.startswith("VmHWM:")))
atexit.register(report)
sys.argv[0] = "box-sessions"
runpy.run_module("box_sessions", run_name="__main__")
"""


def peak_rss(ids: int, directory: Path) -> float:
    """Peak RSS (MB) of the CLI streaming ``ids`` ids from a file to a report file."""
    source = directory / f"ids-{ids}.txt"
    with source.open("w") as f:
        for i in range(ids):
            f.write(f"{10_000_000 + i}\n")
    with Server() as server:
        env = {**os.environ, "BOX_DEVELOPER_TOKEN": TOKEN}
        args = [sys.executable, "-c", RSS_PROBE, "terminate", "--user-ids", str(source), "--rate", "0"]
        args += ["--report", str(directory / "report.jsonl"), "--base-url", server.url]
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600, check=False)  # noqa: S603
        assert done.returncode == 0, f"the CLI run failed: {done.stderr[-500:]}"  # noqa: S101
        assert f"Terminated {ids:,} of {ids:,}" in done.stdout, done.stdout  # noqa: S101
    peak_kb = int(done.stderr.rsplit("VmHWM:", 1)[1].split()[0])
    return peak_kb / 1024


PARTS = ["throughput", "cpu", "memory", "single", "shared"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a small job, for a smoke test")
    parser.add_argument("--only", choices=PARTS, action="append", help="run this part only (repeatable)")
    parser.add_argument("--profile", choices=list(PROFILE_IDS), action="append", help="throughput: this profile only")
    parser.add_argument("--ours-only", action="store_true", help="throughput: box_sessions only")
    parser.add_argument("--single-round", nargs=3, metavar=("SYSTEM", "CALLS", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.single_round:
        system, calls, url = args.single_round
        single_round(system, int(calls), url)
        return
    logging.disable(logging.WARNING)  # the official SDK logs every retry
    parts = args.only or PARTS
    print(f"Machine: {platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} cores")  # noqa: T201
    if "throughput" in parts:
        scale = 0.1 if args.quick else 1.0
        work = job(2000, 500, 20) if args.quick else job(20_000, 5_000, 200)
        profiles = [list(PROFILES)[PROFILE_IDS[p]] for p in args.profile or PROFILE_IDS]
        systems = list(SYSTEMS)[:1] if args.ours_only else list(SYSTEMS)
        print(  # noqa: T201
            f"\nJob: {sum(len(v) for v in work.values()):,} ids in batches of {BATCH} (the drop profile: 50,000 "
            "user ids), FakeBox with 150 +- 50 ms"
        )
        print("| profile | system | wall s | requests | 429s | retries | ids terminated | ids lost | ideal / wall |")  # noqa: T201
        print("|---|---|---|---|---|---|---|---|---|")  # noqa: T201
        throughput(work, systems, profiles, scale)
    if "cpu" in parts:
        requests = 200 if args.quick else 2000
        print(f"\nCPU cost of the layer: {cpu_cost(requests)}")  # noqa: T201
        with Server() as server:
            cost = telemetry_cost(requests, server.url)
        print(f"CPU cost of telemetry: {describe(cost)}")  # noqa: T201
        print(f"  {cost}")  # noqa: T201
    if "memory" in parts:
        with tempfile.TemporaryDirectory() as tmp:
            sizes = (10_000, 100_000) if args.quick else (100_000, 1_000_000)
            rss = {n: peak_rss(n, Path(tmp)) for n in sizes}
        small, large = sizes
        print(  # noqa: T201
            f"\nPeak RSS streaming ids from a file to a report file: {small:,} ids {rss[small]:.0f} MB, "
            f"{large:,} ids {rss[large]:.0f} MB (x{large // small} ids -> x{rss[large] / rss[small]:.2f} memory)"
        )
    if "single" in parts:
        print("\nCPU seconds of concurrent single calls on one client, pacing off, FakeBox answering at once")  # noqa: T201
        print("| concurrent single calls | box_sessions CPU s | bare httpx CPU s | ratio |")  # noqa: T201
        print("|---|---|---|---|")  # noqa: T201
        single_calls((200, 1000) if args.quick else (1000, 5000))
    if "shared" in parts:
        shared_rows(Server, quick=args.quick)


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_NOFILE, resource.getrlimit(resource.RLIMIT_NOFILE))
    main()
