"""Helpers for testing code that uses box_sessions.

- `FakeBox`: an in-memory fake of Box's session-termination and token endpoints, as an httpx
  transport or a real server on 127.0.0.1; the ``fake_box`` pytest fixture gives a fresh one.
  `ControlEndpoint`: an endpoint of the fake's own, as `FakeBox.control_endpoints` lists them.
- `FakeClock`: waits take no real time and are recorded.
- `LoopbackServer`: a small HTTP/1.1 server on 127.0.0.1 whose handler can answer, stall or drop.
"""

from ._clock import FakeClock
from ._fakebox import ControlEndpoint, FakeBox, RecordedRequest
from ._server import DropConnection, LoopbackServer, Reply, Request

__all__ = [
    "ControlEndpoint",
    "DropConnection",
    "FakeBox",
    "FakeClock",
    "LoopbackServer",
    "RecordedRequest",
    "Reply",
    "Request",
]
