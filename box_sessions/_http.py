"""The HTTP stack: httpx2 where it is installed, httpx otherwise; one module, chosen once at import.

httpx2 is Pydantic's maintained fork of httpx 0.28.1, with the same public API; FastAPI backends
increasingly have it (Starlette's TestClient prefers it), and a service should run one HTTP stack,
not two. So the package prefers it, as Starlette does, and falls back to httpx, its dependency.
``BOX_SESSIONS_HTTP=httpx`` in the environment, before the package is imported, chooses httpx
although httpx2 is installed (a test suite that mocks httpx with respx, say).

Every module of the package takes ``httpx`` from here. The type checker sees httpx: the two share
one API.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

__all__ = ["HTTP_STACK", "httpx", "stack_mismatch"]

if TYPE_CHECKING:
    import httpx
else:
    try:
        if os.environ.get("BOX_SESSIONS_HTTP", "").strip().lower() == "httpx":
            raise ImportError("httpx chosen by BOX_SESSIONS_HTTP")  # noqa: TRY301 - the same path as "not installed"
        import httpx2 as httpx
    except ImportError:
        import httpx

#: The HTTP library the package uses: ``"httpx2"`` or ``"httpx"``.
HTTP_STACK: str = httpx.__name__


def stack_mismatch(argument: str, value: object, expected: str) -> TypeError | None:
    """The error for ``value`` given as ``argument`` when it is of the other HTTP stack, or ``None`` when it is not.

    Args:
        argument: The argument, for the message (``"http_client"``).
        value: What was given.
        expected: What was expected, in this stack's words (``"AsyncClient"``).
    """
    module = type(value).__module__.partition(".")[0]
    if module not in ("httpx", "httpx2") or module == HTTP_STACK:
        return None
    other = "httpx" if HTTP_STACK == "httpx2" else "httpx2"
    how = (
        "set BOX_SESSIONS_HTTP=httpx before importing box_sessions, or pass an httpx2." + expected
        if HTTP_STACK == "httpx2"
        else "install httpx2 (box_sessions then uses it), or pass an httpx." + expected
    )
    return TypeError(
        f"{argument} is an {module}.{type(value).__name__}, but box_sessions uses {HTTP_STACK}, not {other}: "
        f"a service should run one HTTP stack; {how}"
    )
