"""Running the box-sessions command as a real process, for the command-line tests (``tests/cli/``) and others."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

DEV = {"BOX_DEVELOPER_TOKEN": "fake-developer-token"}


def environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any ``BOX_*`` variable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOX_")}
    env.update(extra or {})
    return env


async def start(
    args: Sequence[str], env: dict[str, str] | None = None, *, umask: int = -1
) -> asyncio.subprocess.Process:
    """Start ``python -m box_sessions args`` with pipes for stdin, stdout and stderr (and ``umask``, if given)."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "box_sessions",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=environment(env),
        umask=umask,
    )


async def run(
    args: Sequence[str],
    env: dict[str, str] | None = None,
    stdin: str | bytes = "",
    timeout: float = 120,
    *,
    umask: int = -1,
) -> tuple[int, str, str]:
    """Run the command to its end; return its exit status, stdout and stderr."""
    proc = await start(args, env, umask=umask)
    data = stdin.encode() if isinstance(stdin, str) else stdin
    out, err = await asyncio.wait_for(proc.communicate(data), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def write(path: Path, lines: Sequence[object]) -> str:
    """Write one line per item to ``path`` (UTF-8); return the path as a string."""
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return str(path)
