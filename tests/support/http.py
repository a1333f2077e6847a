"""The HTTP stack the package uses, for the tests' own HTTP objects: ``from ..support.http import httpx``.

The package takes httpx2 where it is installed and httpx otherwise (``box_sessions._http``); an
object of the other stack given to it is refused. So every HTTP object a test hands to the package,
or builds an answer from (a MockTransport, an AsyncClient, a Response, a Request, an error raised
from a transport), comes from this module, and the suite runs unchanged under either stack. The
type checker sees httpx either way: the two share one API.
"""

from __future__ import annotations

from box_sessions._http import HTTP_STACK, httpx

__all__ = ["HTTP_STACK", "httpx"]
