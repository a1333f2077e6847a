"""A hostile HTTP/1.1 server on 127.0.0.1, in a thread of its own with an event loop of its own.

Tests of issue 10 (what the README promises against servers that misbehave) need a server that
does what Box would never do on purpose: drip an answer one byte at a time (in the status line
and headers, or in the body), stall, send a body of hundreds of megabytes, echo the request's
form, or drop the connection. `box_sessions.testing.LoopbackServer` speaks through h11, which
writes a response head in one piece, so this one writes raw bytes itself.

It runs in its own thread and event loop, so a test can compare `asyncio.all_tasks()` before
and after a call and see only what the client left behind. Each request is answered by a
handler, a plain function called in the server's thread with the `Request`, that returns what
to do (`Answer`, `Drip`, `Stall`, `Huge`, `Drop`, `Raw`). Every behaviour is bounded: it ends when the
client hangs up, when `HostileServer.stop` runs, or after `MAX_ACTION_SECONDS` at the latest.

Example::

    with serve(lambda request: Answer(202, b"{}")) as server:
        client = BoxClient(auth, base_url=server.url)
        ...
    assert server.count("/2.0/users/terminate_sessions") == 1
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal, TypeAlias

import attrs

from ..conftest import ACCEPTED, BOUND, token_body

__all__ = [
    "ACCEPTED",
    "MAX_ACTION_SECONDS",
    "Action",
    "Answer",
    "Drip",
    "Drop",
    "Handler",
    "HostileServer",
    "Huge",
    "Raw",
    "Request",
    "Stall",
    "accepted",
    "html_echo",
    "json_answer",
    "oauth_echo",
    "oauth_error",
    "serve",
    "token_answer",
]

#: The longest any one behaviour runs; `HostileServer.stop` ends them all sooner.
MAX_ACTION_SECONDS = 30.0
#: A request head longer than this is refused (the connection is closed).
_MAX_HEAD = 64 * 1024
_REASONS = {
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


@attrs.frozen
class Request:
    """A request as the server received it.

    Attributes:
        method: ``"POST"``, ...
        path: The path, query string included.
        headers: Header names lower-cased.
        body: The raw body.
        number: 1 for the first request to this path, 2 for the second, ...
        received_at: `time.monotonic` when the whole request had arrived.
    """

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    number: int
    received_at: float

    def form(self) -> dict[str, str]:
        """The body as a url-encoded form."""
        return dict(urllib.parse.parse_qsl(self.body.decode("utf-8", errors="replace")))

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)


@attrs.frozen
class Answer:
    """Answer at once, or after ``delay`` seconds, with a ``content-length`` (and ``reason``, else the usual one)."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = attrs.field(factory=dict)
    delay: float = 0.0
    reason: str | None = None


@attrs.frozen
class Raw:
    """Send these bytes as they are (a head HTTP does not allow, say), then close the connection."""

    data: bytes


@attrs.frozen
class Drip:
    """Send the answer one byte every ``interval`` seconds: all of it (``part="head"``: the status
    line and headers first), or the head at once and the body byte by byte (``part="body"``)."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = attrs.field(factory=dict)
    interval: float = 0.3
    part: Literal["head", "body"] = "head"


@attrs.frozen
class Stall:
    """Send nothing and keep the connection open (until the client hangs up, or ``seconds``)."""

    seconds: float = MAX_ACTION_SECONDS


@attrs.frozen
class Huge:
    """An answer of ``size`` bytes, generated chunk by chunk as the client reads it.

    The body is ``prefix`` followed by ``filler`` repeated up to ``size`` bytes; the server never
    holds more than one chunk. Framed with ``content-length``, or chunked when ``chunked``.
    ``declared``: the ``content-length`` to send instead of the size (a server that lies about it).
    """

    status: int
    size: int
    prefix: bytes = b""
    filler: bytes = b"x"
    headers: Mapping[str, str] = attrs.field(factory=dict)
    chunked: bool = False
    declared: int | None = None


@attrs.frozen
class Drop:
    """Close the connection without answering."""


Action: TypeAlias = "Answer | Drip | Stall | Huge | Drop | Raw"
Handler: TypeAlias = Callable[[Request], Action]


def json_answer(status: int, body: Any, *, delay: float = 0.0, headers: Mapping[str, str] | None = None) -> Answer:
    """An `Answer` with a JSON body."""
    return Answer(
        status, json.dumps(body).encode(), {"content-type": "application/json", **(headers or {})}, delay=delay
    )


def accepted(*, delay: float = 0.0) -> Answer:
    """Box's 202 to a termination request."""
    return json_answer(202, ACCEPTED, delay=delay)


def token_answer(access_token: str, *, refresh_token: str | None = None, delay: float = 0.0) -> Answer:
    """A token endpoint's success, as Box sends it."""
    return json_answer(200, token_body(access_token, refresh_token=refresh_token), delay=delay)


def oauth_error(status: int, error: str, description: str, *, delay: float = 0.0) -> Answer:
    """A token endpoint's refusal, in the OAuth shape."""
    return json_answer(status, {"error": error, "error_description": description}, delay=delay)


def oauth_echo(request: Request) -> Answer:
    """A 400 whose description quotes the raw form it received, secrets and all."""
    return oauth_error(400, "invalid_request", "bad request: " + request.body.decode("utf-8", errors="replace"))


def html_echo(request: Request) -> Answer:
    """A proxy's 500 HTML page quoting the raw form it received (``retry-after: 0``: retries cost no time)."""
    page = f"<html><body><p>{request.body.decode('utf-8', errors='replace')}</p><h1>Internal error</h1></body></html>"
    return Answer(500, page.encode(), {"content-type": "text/html", "retry-after": "0"})


class _Closed(Exception):  # noqa: N818 - a private signal: the client hung up
    """The client closed the connection."""


class _Connection:
    """One client connection: its bytes read so far, and whether the client hung up."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.buffer = bytearray()

    async def _fill(self) -> None:
        data = await self.reader.read(65536)
        if not data:
            raise _Closed
        self.buffer += data

    async def read_request(self) -> tuple[str, str, dict[str, str], bytes] | None:
        """The next request's method, path, headers and body; None when the client hung up."""
        try:
            while (end := self.buffer.find(b"\r\n\r\n")) < 0:
                if len(self.buffer) > _MAX_HEAD:
                    return None
                await self._fill()
            head = bytes(self.buffer[:end]).decode("latin-1")
            del self.buffer[: end + 4]
            request_line, *lines = head.split("\r\n")
            method, path, _version = request_line.split(" ", 2)
            headers: dict[str, str] = {}
            for line in lines:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            while len(self.buffer) < length:
                await self._fill()
            body = bytes(self.buffer[:length])
            del self.buffer[:length]
        except (_Closed, ConnectionError, ValueError):
            return None
        return method, path, headers, body

    async def watch(self) -> None:
        """Return when the client hangs up; keep what it sends early for the next request."""
        with contextlib.suppress(_Closed, ConnectionError):
            while True:
                await self._fill()

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()


def _head(status: int, headers: Mapping[str, str], framing: Mapping[str, str], reason: str | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown') if reason is None else reason}"]
    lines += [f"{name}: {value}" for name, value in {**headers, **framing}.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _perform(conn: _Connection, action: Action) -> bool:
    """Carry out ``action``; return whether the connection can serve another request."""
    if isinstance(action, Answer):
        await asyncio.sleep(action.delay)
        framing = {"content-length": str(len(action.body))}
        await conn.send(_head(action.status, action.headers, framing, action.reason) + action.body)
        return True
    if isinstance(action, Raw):
        await conn.send(action.data)
        return False
    if isinstance(action, Drip):
        head = _head(action.status, action.headers, {"content-length": str(len(action.body))})
        if action.part == "body":
            await conn.send(head)
            slow = action.body
        else:
            slow = head + action.body
        for i in range(len(slow)):
            await conn.send(slow[i : i + 1])
            await asyncio.sleep(action.interval)
        return True
    if isinstance(action, Stall):
        await asyncio.sleep(action.seconds)
        return False
    if isinstance(action, Huge):
        await _send_huge(conn, action)
        return True
    return False  # Drop


async def _send_huge(conn: _Connection, action: Huge) -> None:
    length = action.size if action.declared is None else action.declared
    framing = {"transfer-encoding": "chunked"} if action.chunked else {"content-length": str(length)}
    await conn.send(_head(action.status, action.headers, framing))
    chunk_size = 64 * 1024
    filler = (action.filler * (chunk_size // len(action.filler) + 1))[:chunk_size]
    sent = 0
    first = True
    while sent < action.size:
        chunk = (action.prefix + filler)[:chunk_size] if first else filler
        chunk = chunk[: action.size - sent]
        first = False
        sent += len(chunk)
        await conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk) if action.chunked else chunk)
    if action.chunked:
        await conn.send(b"0\r\n\r\n")


class HostileServer:
    """Serves ``handler`` on 127.0.0.1 from a thread of its own; see the module docstring.

    Counts are safe to read from any thread: requests per path, connections open, requests
    being answered (``busy``), and the log of every request. A test waits for them to reach a
    value with `wait_until`, woken by each change, never by polling the clock.
    """

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._lock = threading.RLock()  # re-entrant: a condition of `wait_until` reads the counts under it
        self._changed = threading.Condition(self._lock)
        self._counts: collections.Counter[str] = collections.Counter()
        self._log: list[Request] = []
        self._open = 0
        self._busy = 0
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._failure: BaseException | None = None
        self.handler_errors: list[Exception] = []
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def count(self, path: str | None = None) -> int:
        """Requests received for ``path`` (the path without its query), or in all."""
        with self._lock:
            return sum(self._counts.values()) if path is None else self._counts[path]

    def requests(self, path: str | None = None) -> list[Request]:
        """Every request received (for ``path`` only, when given), in arrival order."""
        with self._lock:
            return [r for r in self._log if path is None or r.path.split("?")[0] == path]

    @property
    def open_connections(self) -> int:
        with self._lock:
            return self._open

    @property
    def busy(self) -> int:
        """Requests received and not yet fully answered (or given up because the client left)."""
        with self._lock:
            return self._busy

    async def wait_until(self, condition: Callable[[], bool]) -> None:
        """Wait until ``condition()`` holds, checked at each change of the counts; fail after `BOUND` s.

        The wait blocks a worker thread, not the caller's event loop: the client under test goes
        on meanwhile.
        """

        def wait() -> bool:
            with self._changed:
                return self._changed.wait_for(condition, BOUND)

        if not await asyncio.to_thread(wait):
            raise AssertionError(f"the hostile server did not get there in {BOUND:g} s")

    def _note(self) -> None:
        """Wake `wait_until`: a count changed. Called with the lock held."""
        self._changed.notify_all()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="hostile-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(5):
            raise RuntimeError("the hostile server did not start")
        if self._failure is not None:
            raise RuntimeError("the hostile server could not start") from self._failure

    def stop(self) -> None:
        """Stop listening, end every behaviour, close every connection and join the thread."""
        if self._loop is not None and self._stopping is not None and self._thread is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(10)
            if self._thread.is_alive():
                raise RuntimeError("the hostile server did not stop within 10 s")

    def __enter__(self) -> HostileServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- the server's own thread --------------------------------------------------------------

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 - reported to start(), which re-raises it
            self._failure = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(self._on_connection, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            await self._stopping.wait()
        finally:
            server.close()
            # Closing a socket ends its connection's task (the socket watcher sees EOF); cancelling
            # that task instead would make asyncio's stream machinery log an error on Python 3.11.
            for writer in list(self._writers):
                writer.transport.abort()
            if self._connections:
                await asyncio.wait(self._connections, timeout=5)
            await server.wait_closed()

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        self._writers.add(writer)
        with self._lock:
            self._open += 1
            self._note()
        conn = _Connection(reader, writer)
        try:
            while await self._serve_one(conn):
                pass
        except (ConnectionError, OSError):
            pass  # the client went away mid-answer
        finally:
            with self._lock:
                self._open -= 1
                self._note()
            self._connections.discard(task)
            self._writers.discard(writer)
            writer.transport.abort()  # close at once, unsent data and all

    async def _serve_one(self, conn: _Connection) -> bool:
        parsed = await conn.read_request()
        if parsed is None:
            return False
        method, path, headers, body = parsed
        with self._lock:
            self._counts[path.split("?")[0]] += 1
            request = Request(method, path, headers, body, self._counts[path.split("?")[0]], time.monotonic())
            self._log.append(request)
            self._busy += 1
            self._note()
        try:
            try:
                action = self._handler(request)
            except Exception as exc:  # noqa: BLE001 - a test's bug: kept for serve() to raise
                self.handler_errors.append(exc)
                action = Answer(599, repr(exc).encode())
            return await self._perform_watched(conn, action)
        finally:
            with self._lock:
                self._busy -= 1
                self._note()

    async def _perform_watched(self, conn: _Connection, action: Action) -> bool:
        """Perform ``action`` while watching the socket: when the client hangs up, stop at once."""
        perform = asyncio.ensure_future(asyncio.wait_for(_perform(conn, action), MAX_ACTION_SECONDS))
        watch = asyncio.ensure_future(conn.watch())
        try:
            await asyncio.wait({perform, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (perform, watch):
                task.cancel()
            await asyncio.wait({perform, watch})
        if watch.done() and not watch.cancelled():
            return False  # the client hung up
        if perform.cancelled() or perform.exception() is not None:
            return False
        return perform.result()


@contextlib.contextmanager
def serve(handler: Handler) -> Iterator[HostileServer]:
    """Run a `HostileServer` for the ``with`` block."""
    server = HostileServer(handler)
    server.start()
    try:
        yield server
    finally:
        server.stop()
    if server.handler_errors:
        raise RuntimeError("a handler of the hostile server failed") from server.handler_errors[0]
