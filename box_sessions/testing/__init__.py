"""Helpers for testing code that uses box_sessions: a fake clock and a loopback HTTP server."""

from ._clock import FakeClock
from ._server import DropConnection, LoopbackServer, Reply, Request

__all__ = ["DropConnection", "FakeClock", "LoopbackServer", "Reply", "Request"]
