"""A real ``redis-server`` process on 127.0.0.1 for the tests of state shared across processes.

Never a Python fake of Redis: the locks' time to live, a server killed mid-job and TLS are what
is tested. Started on a free port with no persistence, bounded waits, killed at teardown.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

#: Seconds to wait for the server to answer PING after it was started.
START_WAIT = 10.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith((b"+PONG", b"-NOAUTH"))
    except OSError:
        return False


class RedisServer:
    """One ``redis-server`` process: `start`, `kill` (SIGKILL) and start again on the same port.

    Args:
        binary: The ``redis-server`` executable.
        directory: Its working directory (its log file goes there).
        args: More options, e.g. ``["--requirepass", "..."]`` or TLS options.
    """

    def __init__(self, binary: str, directory: Path, args: list[str] | None = None) -> None:
        self.binary = binary
        self.directory = directory
        self.args = list(args or [])
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, *, tls: bool = False) -> None:
        """Start the server and wait (bounded) until it answers; raise if it does not."""
        port_args = ["--port", "0", "--tls-port", str(self.port)] if tls else ["--port", str(self.port)]
        command = [
            self.binary,
            *port_args,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.directory),
            "--logfile",
            "redis.log",
            *self.args,
        ]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603 - a fixed binary
        deadline = time.monotonic() + START_WAIT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if self._listening(tls=tls):
                return
            time.sleep(0.02)
        self.kill()
        log = self.directory / "redis.log"
        text = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise RuntimeError(f"redis-server did not start on port {self.port} within {START_WAIT} s:\n{text}")

    def _listening(self, *, tls: bool) -> bool:
        if not tls:
            return _answers_ping(self.port)
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
            return True
        return False

    def kill(self) -> None:
        """SIGKILL the server, as a crash would, and reap it (bounded)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None
