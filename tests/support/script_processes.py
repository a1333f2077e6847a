"""Real processes running a test's script with a JSON config: started, awaited until ready, reaped."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

#: Starts one process with its config as keyword arguments; returns it once it printed "ready".
Start = Callable[..., Awaitable[asyncio.subprocess.Process]]


@contextlib.asynccontextmanager
async def script_processes(
    script: Path, *, bound: float, defaults: Callable[[int], dict[str, Any]] | None = None
) -> AsyncIterator[Start]:
    """Start processes running ``script`` (argument: the JSON config); every wait bounded by ``bound`` s.

    Args:
        script: The Python file each process runs.
        bound: Seconds any wait on a process may take.
        defaults: The default config of the n-th process (0-based), under what the caller gives.
    """
    started: list[asyncio.subprocess.Process] = []

    async def start(**config: Any) -> asyncio.subprocess.Process:
        config = {**(defaults(len(started)) if defaults else {}), **config}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(script),
            json.dumps(config),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        started.append(process)
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), bound)
        if line != b"ready\n":
            _, err = await asyncio.wait_for(process.communicate(), bound)
            raise AssertionError(f"the process did not start: {err.decode(errors='replace')[-2000:]}")
        return process

    try:
        yield start
    finally:
        for process in started:
            if process.returncode is None:
                process.kill()
            with contextlib.suppress(ProcessLookupError):
                await asyncio.wait_for(process.communicate(), bound)
