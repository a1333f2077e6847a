"""An httpx transport that answers in-process through a handler, as `FakeBox.transport` gives.

The handler is the one the loopback server would call (`Request` in, `Reply` out); a
`DropConnection` becomes the error httpx raises when a server disconnects, and the request's read
timeout applies to the handler's answer as it would to a socket.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from .._http import httpx
from ._server import DropConnection, Reply, Request

__all__ = ["HandlerTransport"]


class HandlerTransport(httpx.AsyncBaseTransport):
    """Answers httpx requests in-process through ``handle``, with no sockets."""

    def __init__(self, handle: Callable[[Request], Awaitable[Reply]]) -> None:
        self._handle = handle

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        incoming = Request(
            method=request.method,
            path=request.url.raw_path.decode(),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
        )
        read_timeout = request.extensions.get("timeout", {}).get("read")
        try:
            if read_timeout is None:
                reply = await self._handle(incoming)
            else:
                reply = await asyncio.wait_for(self._handle(incoming), read_timeout)
        except DropConnection:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            ) from None
        except asyncio.TimeoutError:
            raise httpx.ReadTimeout("timed out waiting for the fake's answer", request=request) from None
        return httpx.Response(reply.status, headers=dict(reply.headers), content=reply.body, request=request)
