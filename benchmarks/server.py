"""FakeBox on 127.0.0.1 for the benchmarks, with a rate limit that may change during the job.

``python benchmarks/server.py --rate-limit 1000 --schedule 8:400,20:1000`` allows 1,000 requests a
minute, 400 from 8 s after the first termination request, and 1,000 again from 20 s. It prints
``FakeBox listening on URL`` and serves until terminated (the benchmark stops it after each run).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from box_sessions.testing import FakeBox, LoopbackServer, Reply, Request


def parse_schedule(text: str) -> list[tuple[float, float]]:
    """``"8:400,20:1000"`` -> ``[(8.0, 400.0), (20.0, 1000.0)]``: seconds after the first request, requests a minute."""
    steps = []
    for part in filter(None, text.split(",")):
        at, _, rate = part.partition(":")
        steps.append((float(at), float(rate)))
    return sorted(steps)


async def serve(fake: FakeBox, schedule: list[tuple[float, float]]) -> None:
    started: list[asyncio.Task[None]] = []

    async def follow_schedule() -> None:
        loop = asyncio.get_running_loop()
        begin = loop.time()
        for at, rate in schedule:
            await asyncio.sleep(max(0.0, begin + at - loop.time()))
            fake.rate_limit = rate  # FakeBox reads its limit at every request

    async def handle(request: Request) -> Reply:
        if not started and request.path.endswith("/terminate_sessions"):
            started.append(asyncio.ensure_future(follow_schedule()))
        return await fake.handle(request)

    async with LoopbackServer(handle) as server:
        print(f"FakeBox listening on {server.url}", flush=True)  # noqa: T201 - the bench reads the URL
        try:
            await asyncio.Event().wait()
        finally:
            for task in started:
                task.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate-limit", type=float)
    parser.add_argument("--schedule", type=parse_schedule, default=[])
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--jitter", type=float, default=0.0)
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--stall-rate", type=float, default=0.0)
    parser.add_argument("--stall-seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    fake = FakeBox(
        rate_limit=args.rate_limit,
        latency=args.latency,
        jitter=args.jitter,
        error_rate=args.error_rate,
        stall_rate=args.stall_rate,
        stall_seconds=args.stall_seconds,
        seed=args.seed,
        record_requests=False,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(fake, args.schedule))


if __name__ == "__main__":
    main()
