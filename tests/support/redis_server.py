"""A real ``redis-server`` process on 127.0.0.1 for the tests of state shared across processes.

Never a Python fake of Redis: the locks' time to live, a server killed mid-job, a restart with
or without its append-only file, TLS, replicas and clusters are what is tested. Started on a free
port with its own directory, every wait bounded, killed (SIGKILL) and reaped by its owner.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import redis

#: Seconds to wait for the server to answer PING after it was started.
START_WAIT = 10.0
#: Starts tried on fresh ports when the port found free was taken meanwhile (another xdist worker).
PORT_TRIES = 3
#: Seconds an admin command may take.
ADMIN_TIMEOUT = 5.0
#: Seconds to wait for a killed process to be reaped.
REAP_WAIT = 10.0


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


def kill_all(servers: Iterable[RedisServer]) -> None:
    """SIGKILL and reap every server, even when reaping one fails (the first failure is raised at the end)."""
    failures: list[BaseException] = []
    for server in servers:
        try:
            server.kill()
        except Exception as exc:  # noqa: BLE001 - every server is reaped first; the failure is raised below
            failures.append(exc)
    if failures:
        raise failures[0]


class RedisServer:
    """One ``redis-server`` process: `start`, `kill` (SIGKILL), and `restart` on the same port and directory.

    The directory is kept across restarts: with ``appendonly`` the server comes back with what it
    had written before it was killed (``appendfsync always``: every write reaches the file before
    Redis answers, so a kill loses nothing it acknowledged); without, it comes back empty (no RDB
    snapshots either).

    Args:
        binary: The ``redis-server`` executable.
        directory: Its working directory (its log file and append-only files go there).
        args: More options, e.g. ``["--requirepass", "..."]``, ``["--maxmemory", "2mb"]``.
        appendonly: Keep an append-only file in ``directory``.
    """

    def __init__(
        self, binary: str, directory: Path, args: list[str] | None = None, *, appendonly: bool = False
    ) -> None:
        self.binary = binary
        self.directory = directory
        self.args = list(args or [])
        self.appendonly = appendonly
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._has_run = False
        self._log_offset = 0
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:{port}/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self.process is not None and self.process.poll() is None

    def _persistence(self) -> list[str]:
        if self.appendonly:
            return ["--save", "", "--appendonly", "yes", "--appendfsync", "always"]
        return ["--save", "", "--appendonly", "no"]

    def command_line(self, *, tls: bool = False) -> list[str]:
        """The executable and its options (subclasses change them)."""
        port_args = ["--port", "0", "--tls-port", str(self.port)] if tls else ["--port", str(self.port)]
        return [
            self.binary,
            *port_args,
            "--bind",
            "127.0.0.1",
            *self._persistence(),
            "--dir",
            str(self.directory),
            "--logfile",
            "redis.log",
            *self.args,
        ]

    def start(self, *, tls: bool = False) -> None:
        """Start the server and wait (bounded) until it answers; raise with its log if it does not.

        A first start whose port was taken since it was found free is tried again on another
        port (at most `PORT_TRIES` times); a restart keeps its port.
        """
        for attempt in range(PORT_TRIES):
            if self._start_once(tls=tls):
                self._has_run = True
                return
            if self._has_run or "Address already in use" not in self.log_tail() or attempt == PORT_TRIES - 1:
                break
            self.port = free_port()
        raise RuntimeError(f"redis-server did not start on port {self.port} within {START_WAIT} s:\n{self.log_tail()}")

    def _start_once(self, *, tls: bool) -> bool:
        log = self.directory / self.log_name
        # What this start logs only: an earlier start's lines may say "Address already in use".
        self._log_offset = log.stat().st_size if log.exists() else 0
        self.process = subprocess.Popen(  # noqa: S603 - a fixed binary
            self.command_line(tls=tls), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + START_WAIT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if self._listening(tls=tls):
                return True
            time.sleep(0.02)
        self.kill()
        return False

    @property
    def log_name(self) -> str:
        """The log file's name in `directory`."""
        return "redis.log"

    def log_tail(self, chars: int = 2000) -> str:
        """The end of what the server logged since its last start, for failure messages."""
        log = self.directory / self.log_name
        if not log.exists():
            return ""
        with log.open("rb") as file:
            file.seek(self._log_offset)
            return file.read().decode(errors="replace")[-chars:]

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
        self.process.wait(timeout=REAP_WAIT)
        self.process = None

    def restart(self) -> None:
        """``kill -9`` the server and start it again on the same port and directory.

        With ``appendonly`` it comes back with every write it acknowledged; without, empty.
        """
        self.kill()
        self.start()

    @contextlib.contextmanager
    def admin(self, **kwargs: Any) -> Iterator[redis.Redis]:
        """A synchronous redis-py client of the default user, closed after the block.

        Args:
            kwargs: More options for ``redis.Redis`` (``decode_responses=True``, a user...).
        """
        kwargs.setdefault("socket_timeout", ADMIN_TIMEOUT)
        kwargs.setdefault("socket_connect_timeout", ADMIN_TIMEOUT)
        client = redis.Redis(host="127.0.0.1", port=self.port, **kwargs)
        try:
            yield client
        finally:
            client.close()

    def command(self, *args: str | int | float) -> Any:
        """Send one command on a fresh connection and return Redis's answer (raises redis-py's errors)."""
        with self.admin() as client:
            return client.execute_command(*args)  # type: ignore[no-untyped-call]

    def info(self, section: str) -> dict[str, Any]:
        """``INFO {section}`` as a dict (``role``, ``maxmemory_policy``, ``connected_clients``...)."""
        with self.admin() as client:
            found: dict[str, Any] = client.info(section)
            return found

    def __repr__(self) -> str:
        return f"{type(self).__name__}(port={self.port}, running={self.running})"
