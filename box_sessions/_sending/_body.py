"""Answers read only up to a limit: Box's answers are a few hundred bytes, a hostile one may be gigabytes.

The body is streamed and read up to `MAX_ANSWER_BYTES`; the rest is never read, and the connection
is closed instead of being reused. The status still decides success, and an error is built from the
first bytes, so a flood changes nothing but what is quoted.
"""

from __future__ import annotations

from .._http import httpx

__all__ = ["MAX_ANSWER_BYTES", "WIRE_HEADERS", "read_limited"]

#: The most of an answer's body that is read: 1 MiB, about a thousand times Box's longest answer.
MAX_ANSWER_BYTES = 1 << 20

# Headers that describe the body as it came over the wire, not the bytes kept.
WIRE_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


async def read_limited(response: httpx.Response, limit: int = MAX_ANSWER_BYTES) -> httpx.Response:
    """Read at most ``limit`` bytes of a streamed ``response``, close it, and return a response holding them.

    Raises:
        httpx.HTTPError: reading failed (the caller maps it).
    """
    if _declared_within(response, limit):
        # Box's usual answer: framed by its declared length, nothing to decode. The HTTP layer
        # reads no byte past that length, so the answer is read as it is, and kept as it came.
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in response.aiter_bytes():
            room = limit - size
            chunks.append(chunk[:room])
            size += min(len(chunk), room)
            if size >= limit:
                break
    finally:
        await response.aclose()
    headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in WIRE_HEADERS]
    return httpx.Response(
        response.status_code,
        headers=headers,
        content=b"".join(chunks),
        request=response.request,
        extensions={
            key: response.extensions[key] for key in ("http_version", "reason_phrase") if key in response.extensions
        },
    )


def _declared_within(response: httpx.Response, limit: int) -> bool:
    """Whether the answer is framed by a length of at most ``limit`` bytes, with no encoding to expand.

    Only ``content-length`` frames it: with ``transfer-encoding`` too, HTTP/1.1 frames the body by
    the transfer encoding and the length says nothing (a server may send both, then flood).
    """
    headers = response.headers
    length = headers.get("content-length")
    if length is None or not length.isdigit() or int(length) > limit or "transfer-encoding" in headers:
        return False
    encoding: str = headers.get("content-encoding", "identity")
    return encoding.lower() == "identity"
