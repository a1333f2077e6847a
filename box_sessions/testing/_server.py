"""A small HTTP/1.1 server on 127.0.0.1 (asyncio + h11), for tests that need real sockets.

A handler gets each request and returns a `Reply`, or raises `DropConnection` to close the
socket without answering, or simply takes long (a stalled answer). A request that is not valid
HTTP/1.1 gets an answer from the server itself (400, or the status h11 names, such as 431), then
the connection is closed. No other dependency than h11, which always arrives with httpx.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
from collections.abc import Awaitable, Callable, Mapping

import attrs
import h11

__all__ = ["DropConnection", "LoopbackServer", "Reply", "Request"]

_MAX_BODY = 16 * 1024 * 1024


@attrs.frozen
class Request:
    """A request as the server received it."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes


@attrs.frozen
class Reply:
    """What the handler answers."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = attrs.field(factory=dict)


class DropConnection(Exception):  # noqa: N818 - an instruction to the server, not an error
    """Raised by a handler: close the connection without an answer."""


Handler = Callable[[Request], Awaitable[Reply]]


class LoopbackServer:
    """Serves ``handler`` on ``127.0.0.1`` on a free port while the context is open.

    Example::

        async with LoopbackServer(handler) as server:
            url = server.url  # "http://127.0.0.1:54321"

    On exit every connection is closed and every handler task is cancelled and awaited.
    """

    def __init__(self, handler: Handler, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._handler = handler
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._handlers: set[asyncio.Task[Reply]] = set()
        self._peeks: set[asyncio.Task[bytes]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.peak_connections = 0

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the server is not running")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def open_connections(self) -> int:
        return len(self._writers)

    @property
    def tasks(self) -> set[asyncio.Task[object]]:
        """The server's own tasks (connections, running handlers and their socket watchers).

        Tests compare `asyncio.all_tasks()` minus these with a snapshot to tell what a client left behind.
        """
        return {*self._tasks, *self._handlers, *self._peeks}

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._on_connection, self._host, self._port)

    async def stop(self) -> None:
        """Stop listening, cancel running handlers, close every connection and wait for them."""
        if self._server is None:
            return
        self._server.close()
        for handler in list(self._handlers):
            handler.cancel()
        for writer in list(self._writers):
            writer.close()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def __aenter__(self) -> LoopbackServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None  # noqa: S101 - always inside a task
        self._tasks.add(task)
        self._writers.add(writer)
        self.peak_connections = max(self.peak_connections, len(self._writers))
        try:
            await self._serve(reader, writer)
        except (ConnectionError, h11.ProtocolError, DropConnection):
            pass
        finally:
            self._writers.discard(writer)
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER)
        while True:
            try:
                request = await self._read_request(conn, reader)
            except h11.RemoteProtocolError as exc:
                await self._refuse(conn, writer, exc.error_status_hint)
                return
            if request is None:
                return
            reply = await self._run_handler(request, conn, reader)
            if reply is None:  # the client went away, or the server is stopping
                return
            await self._send(conn, writer, reply, head_only=request.method == "HEAD")
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                return
            conn.start_next_cycle()

    @staticmethod
    async def _send(conn: h11.Connection, writer: asyncio.StreamWriter, reply: Reply, *, head_only: bool) -> None:
        headers = [(k.encode(), v.encode()) for k, v in reply.headers.items()]
        headers.append((b"content-length", str(len(reply.body)).encode()))
        data = conn.send(h11.Response(status_code=reply.status, headers=headers, reason=_reason(reply.status)))
        if reply.body and not head_only:  # an answer to HEAD has the headers of the body, not the body
            data += conn.send(h11.Data(data=reply.body))
        data += conn.send(h11.EndOfMessage())
        writer.write(data)
        await writer.drain()

    async def _refuse(self, conn: h11.Connection, writer: asyncio.StreamWriter, status: int) -> None:
        """Answer a request that is not valid HTTP/1.1; the caller then closes the connection."""
        # A request is only read while our side is IDLE or SEND_RESPONSE, where h11 lets us answer.
        body = f"{status} {_reason(status).decode()}: not a valid HTTP/1.1 request\n".encode()
        reply = Reply(status, body, {"content-type": "text/plain; charset=utf-8", "connection": "close"})
        await self._send(conn, writer, reply, head_only=False)

    async def _run_handler(self, request: Request, conn: h11.Connection, reader: asyncio.StreamReader) -> Reply | None:
        """Run the handler while watching the socket: a client that hangs up cancels it.

        Returns ``None`` when the handler was cancelled (client gone, or `stop`). Raises what
        the handler raised (`DropConnection`).
        """
        handler = asyncio.ensure_future(self._handler(request))
        self._handlers.add(handler)
        peek: asyncio.Task[bytes] | None = None
        try:
            while not handler.done():
                peek = asyncio.ensure_future(reader.read(65536))
                self._peeks.add(peek)
                peek.add_done_callback(self._peeks.discard)
                await asyncio.wait({handler, peek}, return_when=asyncio.FIRST_COMPLETED)
                if not peek.done():
                    peek.cancel()
                    await asyncio.wait({peek})
                    continue
                if peek.cancelled() or peek.exception() is not None or not peek.result():
                    handler.cancel()  # EOF or reset: nobody is waiting for the answer
                    await asyncio.wait({handler})
                    return None
                conn.receive_data(peek.result())  # pipelined bytes: h11 keeps them for later
        finally:
            self._handlers.discard(handler)
            if not handler.done():  # this connection's own task was cancelled: leave nothing behind
                handler.cancel()
            if peek is not None and not peek.done():
                peek.cancel()
        return None if handler.cancelled() else handler.result()

    async def _read_request(self, conn: h11.Connection, reader: asyncio.StreamReader) -> Request | None:
        head: h11.Request | None = None
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                chunk = await reader.read(65536)
                conn.receive_data(chunk)
                continue
            if isinstance(event, h11.Request):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > _MAX_BODY:
                    raise DropConnection
            elif isinstance(event, h11.EndOfMessage) and head is not None:
                # h11 admits only ASCII in the method, target and header names, but any byte but
                # CR, LF and NUL in a header value: latin-1 maps each byte to one character (as
                # WSGI does), so a value that is not UTF-8 reaches the handler instead of failing.
                return Request(
                    method=head.method.decode("ascii"),
                    path=head.target.decode("ascii"),
                    headers={k.decode("ascii").lower(): v.decode("latin-1") for k, v in head.headers},
                    body=bytes(body),
                )
            elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
                return None


def _reason(status: int) -> bytes:
    """The reason phrase of ``status`` (``b""`` for a code http.HTTPStatus does not know)."""
    try:
        return http.HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""
